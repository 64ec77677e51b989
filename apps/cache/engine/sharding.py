"""Keys spread over several Redis nodes, and what each way of spreading them moves when a node joins
or leaves. Plain Python.

Three placements of a key on the current list of nodes:

- `modulo`  crc32(key) % N: simple, but changing N moves about (N-1)/N of the keys;
- `ketama`  a consistent-hash ring (uhashring's ketama, as memcached clients use it): a node that
            joins takes about 1/N of the keys, from every other node; one that leaves hands its keys
            to its neighbours on the ring, and no other key moves;
- `slots`   Redis Cluster's: CRC16/XMODEM of the key (or of its {hash tag}) mod 16384 is the key's
            slot, and slots, not keys, are assigned to nodes; a node that joins takes an equal share
            of slots from each node, one that leaves gives its slots to the rest.

The run keeps one cache per placement, side by side over the same nodes, in front of the same
table: 3 nodes, then 4, then 3 again. When the nodes change, the entries of the keys that move are
deleted on their old node and on their new one (`delete_moved`): a node that owned a key before
(the key moved away and came back) may still hold an entry older than the row, and serving it is a
wrong read that only the TTL ends. With `delete_moved` false the run shows it: the schedule's probe
keys are cached before redis4 joins, written while it serves them, and read after it has left.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from uhashring import HashRing

from . import events
from .clients import Client
from .store import Store, decode, encode
from .workload import Zipf, mix

SCHEMES = ("modulo", "ketama", "slots")
# The nodes a run serves over, phase by phase: the fourth joins, then leaves.
MEMBERSHIP = (("redis1", "redis2", "redis3"), ("redis1", "redis2", "redis3", "redis4"), ("redis1", "redis2", "redis3"))


class Modulo:
    def __init__(self, nodes: tuple[str, ...]):
        self.nodes = tuple(nodes)

    def node_of(self, key: str) -> str:
        return self.nodes[zlib.crc32(key.encode()) % len(self.nodes)]

    def resize(self, nodes: tuple[str, ...]) -> None:
        self.nodes = tuple(nodes)


class Ketama:
    def __init__(self, nodes: tuple[str, ...]):
        self.nodes = tuple(nodes)
        self.ring = HashRing(nodes=list(nodes), hash_fn="ketama")

    def node_of(self, key: str) -> str:
        return self.ring.get_node(key)

    def resize(self, nodes: tuple[str, ...]) -> None:
        for gone in set(self.nodes) - set(nodes):
            self.ring.remove_node(gone)
        for new in [n for n in nodes if n not in self.nodes]:
            self.ring.add_node(new)
        self.nodes = tuple(nodes)


class Slots:
    """Redis Cluster's slot map: 16384 slots, contiguous ranges at the start (as `redis-cli --cluster
    create` assigns them), then rebalanced so that every node holds its equal share, moving only
    the slots that must move (as `redis-cli --cluster rebalance` does)."""

    def __init__(self, nodes: tuple[str, ...]):
        self.nodes = tuple(nodes)
        n, total = len(nodes), REDIS_CLUSTER_HASH_SLOTS
        # redis-cli's ranges: 0-5460, 5461-10922, 10923-16383 for three nodes.
        bounds = [round(i * total / n) for i in range(n + 1)]
        self.owner = [node for i, node in enumerate(nodes) for _ in range(bounds[i], bounds[i + 1])]

    @staticmethod
    def slot_of(key: str) -> int:
        return key_slot(key.encode())

    def node_of(self, key: str) -> str:
        return self.owner[self.slot_of(key)]

    def resize(self, nodes: tuple[str, ...]) -> None:
        nodes = tuple(nodes)
        share = {n: REDIS_CLUSTER_HASH_SLOTS // len(nodes) for n in nodes}
        for n in nodes[: REDIS_CLUSTER_HASH_SLOTS % len(nodes)]:
            share[n] += 1
        held = Counter(o for o in self.owner if o in share)
        # Slots to hand over: every slot of a node that left, and a node's slots beyond its share
        # (taken from the end of its ranges, so what stays stays contiguous).
        free = [s for s, o in enumerate(self.owner) if o not in share]
        for n in nodes:
            surplus = held[n] - share[n]
            if surplus > 0:
                mine = [s for s, o in enumerate(self.owner) if o == n]
                free.extend(mine[-surplus:])
                held[n] = share[n]
        free.sort()
        for n in nodes:
            while held[n] < share[n]:
                self.owner[free.pop(0)] = n
                held[n] += 1
        self.nodes = nodes


PLACEMENTS: dict[str, Callable[[tuple[str, ...]], Any]] = {"modulo": Modulo, "ketama": Ketama, "slots": Slots}


def placements(
    scheme: str, keys: list[str], membership: tuple[tuple[str, ...], ...] = MEMBERSHIP
) -> list[dict[str, str]]:
    """{key: node} for each list of nodes in turn: where `scheme` puts every key, phase by phase."""
    placement = PLACEMENTS[scheme](membership[0])
    out = [{k: placement.node_of(k) for k in keys}]
    for nodes in membership[1:]:
        placement.resize(nodes)
        out.append({k: placement.node_of(k) for k in keys})
    return out


class ShardClient(Client):
    """A cache-aside client in front of one cache per placement, side by side over the same nodes:
    a read goes through each placement in turn (the node it names for the key), and a write
    commits the row once and deletes the key's entry in every placement's cache."""

    def __init__(self, ctx: Any, name: str, store: Store, *, ttl_ms: int, placements: dict[str, Any]):
        super().__init__(ctx, name, store, ttl_ms=ttl_ms)
        self.placements = placements
        self.scheme = next(iter(placements))
        self.load_by_node: dict[str, Counter] = {scheme: Counter() for scheme in placements}

    def _entry(self, key: str) -> tuple[str, str, Any]:
        node = self.placements[self.scheme].node_of(key)
        return node, self.store.cache_key(f"{self.scheme}:{key}"), self.store.redis(node)

    def get(self, key: str) -> tuple[int, str] | None:
        node, name, r = self._entry(key)
        self.load_by_node[self.scheme][node] += 1
        entry = self.ctx.cmd(node, f"GET {self.scheme}:{key}", lambda: r.get(name), actor=self.name)
        return decode(entry)

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        node, name, r = self._entry(key)
        self.ctx.cmd(
            node,
            f"SET {self.scheme}:{key} v{version} PX {ttl_ms}",
            lambda: r.set(name, encode(version, value), px=ttl_ms),
            actor=self.name,
        )
        events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl_ms, node=node, scheme=self.scheme)

    def invalidate(self, key: str) -> None:
        node, name, r = self._entry(key)
        self.ctx.cmd(node, f"DEL {self.scheme}:{key}", lambda: r.delete(name), actor=self.name)
        events.entry(self.ctx, key, "delete", None, by=self.name, node=node, scheme=self.scheme)

    def read(self, key: str) -> int:
        """One cache-aside read through each placement, each recorded in the history."""
        for scheme in self.placements:
            self.scheme = scheme
            op = self.ctx.history.invoke(self.name, "read", {"key": key, "scheme": scheme})
            version, source = self.serve(key)
            self.ctx.history.ok(op, {"key": key, "version": version, "from": source, "scheme": scheme})
            events.read(self.ctx, self.name, key, version, source, scheme=scheme)
        return version

    def write(self, key: str) -> int:
        op = self.ctx.history.invoke(self.name, "write", {"key": key})
        version, _ = self.commit(key)
        for scheme in self.placements:
            self.scheme = scheme
            self.invalidate(key)
        self.ctx.history.ok(op, {"key": key, "version": version})
        return version


class Workload:
    """Each client's seeded operations, round after round: (read|write, key) drawn from the Zipf keys."""

    def __init__(self, ctx: Any, names: list[str], keys: list[str]):
        self.p = ctx.params
        self.draws = {}
        for name in names:
            rng = random.Random(f"{ctx.seed}:{name}:ops")
            self.draws[name] = (rng, Zipf(keys, self.p["zipf"], rng))

    def plan(self, name: str) -> list[tuple[str, str]]:
        rng, zipf = self.draws[name]
        return [(mix(rng, self.p["read_ratio"]), zipf.draw()) for _ in range(self.p["ops"])]


def rounds(ctx: Any, clients: list[Client], workload: Workload, steps: int, *, after_round: Callable | None = None):
    """`steps` rounds; in each, every client takes its next operations from the workload; their
    reads run at once on the clients' threads, then their writes. Keeping a round's writes apart
    from its reads leaves cache-aside's own race (a fill racing a delete) out of these scenarios, so
    that any stale read is the one each lesson is about. `after_round()` runs when a round's writes
    are done (the near cache catches up on its invalidations there)."""
    errors: list[BaseException] = []

    def work(client: Client, ops: list[tuple[str, str]], kind: str) -> None:
        try:
            for f, key in ops:
                if f == kind == "read":
                    client.read(key)
                elif f == kind == "write":
                    client.write(key)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            errors.append(exc)

    def phase(plans: dict[str, list], kind: str) -> None:
        threads = [threading.Thread(target=work, args=(c, plans[c.name], kind), name=c.name) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    for _ in range(steps):
        plans = {c.name: workload.plan(c.name) for c in clients}
        phase(plans, "read")
        phase(plans, "write")
        if after_round is not None:
            after_round()
        reads = sum(c.hits + c.misses for c in clients)
        if reads:
            events.metric(ctx, "hit_ratio", round(sum(c.hits for c in clients) / reads, 3))
        ctx.step()


def moved_keys(ctx: Any, scheme: str, keys: list[str], before: dict, after: dict) -> list[str]:
    """The keys whose node changed, each shown moving."""
    moved = [k for k in keys if before[k] != after[k]]
    for k in moved:
        ctx.emit(
            "state",
            actor="router",
            label=f"{scheme}: {k} {before[k]} → {after[k]}",
            data={"type": "node", "key": k, "node": after[k], "from": before[k], "scheme": scheme},
        )
    return moved


def rebalance(ctx: Any, store: Store, scheme: str, moved: list[str], before: dict, after: dict) -> None:
    """Deletes the entries of the keys that moved, on their old node and their new one."""
    by_node: dict[str, list[str]] = {}
    for k in moved:
        by_node.setdefault(before[k], []).append(k)
        by_node.setdefault(after[k], []).append(k)
    for node, names in sorted(by_node.items()):
        r = store.redis(node)
        entries = [store.cache_key(f"{scheme}:{k}") for k in names]
        for start in range(0, len(entries), 500):
            batch = entries[start : start + 500]
            ctx.cmd(node, f"DEL {len(batch)} moved {scheme} keys", lambda b=batch, r=r: r.delete(*b), actor="router")


def sharding(ctx: Any) -> dict:
    p = ctx.params
    store = Store(ctx.nodes, MEMBERSHIP[0][0])
    keys = store.create(p["keys"], random.Random(ctx.seed))
    routers = {scheme: PLACEMENTS[scheme](MEMBERSHIP[0]) for scheme in SCHEMES}
    clients = [
        ShardClient(ctx, f"c{i}", store, ttl_ms=p["ttl_ms"], placements=routers) for i in range(1, p["clients"] + 1)
    ]
    workload = Workload(ctx, [c.name for c in clients], keys)
    # The schedule's probes: for each placement, the hottest key that moves when redis4 joins.
    # c1 reads them before the join (their entries sit on their old nodes), writes them while
    # redis4 serves them, and reads them again once redis4 has left and they are back home.
    probes = []
    for scheme in SCHEMES:
        first, joined = placements(scheme, keys)[:2]
        probe = next((k for k in keys if first[k] != joined[k]), None)
        if probe is not None and probe not in probes:
            probes.append(probe)
    schedule: dict[str, dict] = {"probes": {}, "written": {}, "read_back": {}}
    moves: dict[str, list] = {scheme: [] for scheme in SCHEMES}
    loads: dict[str, list] = {scheme: [] for scheme in SCHEMES}
    try:
        for i, nodes in enumerate(MEMBERSHIP):
            if i:
                ctx.emit(
                    "phase",
                    actor="router",
                    label=f"{'redis4 joins' if len(nodes) > len(MEMBERSHIP[i - 1]) else 'redis4 leaves'}",
                    data={"phase": "rebalance", "nodes": list(nodes)},
                )
                for scheme, placement in routers.items():
                    before = {k: placement.node_of(k) for k in keys}
                    placement.resize(nodes)
                    after = {k: placement.node_of(k) for k in keys}
                    moved = moved_keys(ctx, scheme, keys, before, after)
                    if p["delete_moved"]:
                        rebalance(ctx, store, scheme, moved, before, after)
                    share = round(len(moved) / len(keys), 3)
                    moves[scheme].append({"nodes": list(nodes), "moved": len(moved), "share": share})
                    ctx.emit(
                        "state",
                        actor="router",
                        label=f"{scheme}: {len(MEMBERSHIP[i - 1])} → {len(nodes)} nodes moved {len(moved)} keys",
                        data={"type": "shard", "scheme": scheme, "nodes": list(nodes), "moved": len(moved)},
                    )
                    events.metric(ctx, "keys_moved_share", share, actor="router", scheme=scheme, nodes=len(nodes))
                ctx.step()
                for k in probes:
                    if i == 1:
                        schedule["written"][k] = clients[0].write(k)
                    else:
                        schedule["read_back"][k] = clients[0].read(k)
            ctx.emit("phase", actor="clients", label=f"clients over {len(nodes)} nodes", data={"phase": "workload"})
            for c in clients:
                for counter in c.load_by_node.values():
                    counter.clear()
            rounds(ctx, clients, workload, p["steps"])
            if i == 0:
                for k in probes:
                    schedule["probes"][k] = clients[0].read(k)
            for scheme in SCHEMES:
                load = Counter()
                for c in clients:
                    load.update(c.load_by_node[scheme])
                loads[scheme].append({n: load[n] for n in nodes})
                for n in nodes:
                    events.metric(ctx, "node_load", load[n], actor="router", scheme=scheme, node=n)
    finally:
        for c in clients:
            c.close()
    return {
        "membership": [list(m) for m in MEMBERSHIP],
        "keys": len(keys),
        "schemes": {scheme: {"moves": moves[scheme], "load": loads[scheme]} for scheme in SCHEMES},
        "delete_moved": p["delete_moved"],
        **schedule,
        "redis_node": store.redis_node,
    }
