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
table. It starts on 3 of its 5 Redis nodes; the schedule adds a fourth after the first phase and
removes it after the second, and the add / remove shard buttons change the nodes whenever pressed
(at the next round). Every change is recorded with the keys each placement moved, which is what the
checkers judge. When the nodes change, the entries of the keys that move are deleted on their old
node and on their new one (`delete_moved`): a node that owned a key before (the key moved away and
came back) may still hold an entry older than the row, and serving it is a wrong read that only
the TTL ends. With `delete_moved` false the run shows it: the schedule's probe keys are cached
before the fourth node joins, written while it serves them, and read after it has left.

Each node's commands go through a circuit breaker of its own (breaker.py): a node killed or paused
by its buttons costs its keys their cache, not the clients an error; its reads are served by the
table, and the deletes that could not reach it are made before it is used again.
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
from .breaker import CircuitBreaker, GuardedCache, ensure_up, restarts_come_back_cold, trust_again
from .clients import Client
from .store import Store, decode, encode
from .workload import Zipf, mix, on_threads

SCHEMES = ("modulo", "ketama", "slots")
# The run's Redis nodes, and the ones it starts on; the others wait to be added.
NODES = ("redis1", "redis2", "redis3", "redis4", "redis5")
START = NODES[:3]
# The nodes a run serves over with no button pressed, phase by phase: the fourth joins, then leaves.
MEMBERSHIP = (START, (*START, "redis4"), START)
# The keys the page draws on the ring and the slot map, at most: more would be a blur of dots.
LAYOUT_KEYS = 1000
# The breaker in front of each node: a few failures open it, a short cool-down before a probe.
BREAKER_FAILURES = 3
COOL_DOWN_S = 0.3


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


def ring_points(placement: Ketama) -> list[list]:
    """The ring's points, [position, node] in ring order: where each node's arcs begin."""
    return [[pos, node] for pos, node in placement.ring.get_points()]


def slot_ranges(owner: list[str]) -> list[list]:
    """The slot map as Redis Cluster shows it: [first, last, node] for each run of slots."""
    ranges: list[list] = []
    for slot, node in enumerate(owner):
        if ranges and ranges[-1][2] == node:
            ranges[-1][1] = slot
        else:
            ranges.append([slot, slot, node])
    return ranges


class ShardClient(Client):
    """A cache-aside client in front of one cache per placement, side by side over the same nodes:
    a read goes through each placement in turn (the node it names for the key), and a write
    commits the row once and deletes the key's entry in every placement's cache."""

    def __init__(self, ctx: Any, name: str, store: Store, caches: dict[str, GuardedCache], *, ttl_ms: int, placements):
        super().__init__(ctx, name, store, ttl_ms=ttl_ms)
        self.caches = caches
        self.placements = placements
        self.scheme = next(iter(placements))
        self.load_by_node: dict[str, Counter] = {scheme: Counter() for scheme in placements}

    def _entry(self, key: str) -> tuple[str, str, GuardedCache]:
        node = self.placements[self.scheme].node_of(key)
        return node, self.store.cache_key(f"{self.scheme}:{key}"), self.caches[node]

    def get(self, key: str) -> tuple[int, str] | None:
        node, name, cache = self._entry(key)
        self.load_by_node[self.scheme][node] += 1
        used, entry = cache.call(self.name, f"GET {self.scheme}:{key}", lambda: cache.redis.get(name))
        return decode(entry) if used else None

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        node, name, cache = self._entry(key)
        used, _ = cache.call(
            self.name,
            f"SET {self.scheme}:{key} v{version} PX {ttl_ms}",
            lambda: cache.redis.set(name, encode(version, value), px=ttl_ms),
        )
        if used:
            events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl_ms, node=node, scheme=self.scheme)

    def invalidate(self, key: str) -> None:
        node, name, cache = self._entry(key)
        used, _ = cache.call(self.name, f"DEL {self.scheme}:{key}", lambda: cache.redis.delete(name))
        if used:
            events.entry(self.ctx, key, "delete", None, by=self.name, node=node, scheme=self.scheme)
        else:
            cache.breaker.defer(f"{self.scheme}:{key}", f"{node} is not reachable")

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

    def phase(plans: dict[str, list], kind: str) -> None:
        def work(client: Client) -> None:
            for f, key in plans[client.name]:
                if f == kind == "read":
                    client.read(key)
                elif f == kind == "write":
                    client.write(key)

        on_threads(clients, work)

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


class Router:
    """The run's list of nodes and its placements, and every change made to them. A change asked
    for (by the schedule or a button) waits in `pending` until the clients are between rounds."""

    def __init__(self, ctx: Any, store: Store, keys: list[str], caches: dict[str, GuardedCache], *, delete_moved: bool):
        self.ctx, self.store, self.keys, self.caches = ctx, store, keys, caches
        self.delete_moved = delete_moved
        self.nodes: tuple[str, ...] = START
        self.placements = {scheme: PLACEMENTS[scheme](START) for scheme in SCHEMES}
        self.pending: list[tuple[str, str, str]] = []
        self.changes: list[dict] = []
        self._lock = threading.Lock()

    def planned(self) -> tuple[str, ...]:
        """The nodes once every pending change is made."""
        nodes = self.nodes
        for kind, node, _ in self.pending:
            nodes = (*nodes, node) if kind == "add" else tuple(n for n in nodes if n != node)
        return nodes

    def ask(self, kind: str, node: str, by: str) -> tuple[str, ...]:
        """Queues a change; ValueError when it cannot be made. Returns the nodes it leads to."""
        with self._lock:
            nodes = self.planned()
            if node not in NODES:
                raise ValueError(f"{node} is not a cache node of this run ({', '.join(NODES)})")
            if kind == "add" and node in nodes:
                raise ValueError(f"{node} already serves keys")
            if kind == "remove" and node not in nodes:
                raise ValueError(f"{node} serves no keys")
            if kind == "remove" and len(nodes) == 1:
                raise ValueError(f"{node} is the last node: the cache needs one")
            self.pending.append((kind, node, by))
            return self.planned()

    def on_buttons(self) -> None:
        def handler(kind: str):
            def press(target: str, **options: Any) -> dict:
                nodes = self.ask(kind, target, "button")
                return {"nodes": list(nodes), "at": "the next round"}

            return press

        self.ctx.on_fault("add-shard", handler("add"))
        self.ctx.on_fault("remove-shard", handler("remove"))

    def spare(self) -> str | None:
        planned = self.planned()
        return next((n for n in NODES if n not in planned), None)

    def apply_pending(self) -> list[dict]:
        with self._lock:
            pending, self.pending = self.pending, []
        return [self.change(kind, node, by) for kind, node, by in pending]

    def change(self, kind: str, node: str, by: str) -> dict:
        """Moves to the new list of nodes: every placement resized, the keys it moves shown (and
        their entries deleted), and the change recorded for the checkers."""
        ctx, keys = self.ctx, self.keys
        before = self.nodes
        after = (*before, node) if kind == "add" else tuple(n for n in before if n != node)
        ctx.emit(
            "phase",
            actor="router",
            label=f"{node} {'joins' if kind == 'add' else 'leaves'}: {len(before)} → {len(after)} nodes",
            data={"phase": "rebalance", "nodes": list(after), "node": node, "change": kind, "by": by},
        )
        record = {"kind": kind, "node": node, "by": by, "before": list(before), "after": list(after), "moved": {}}
        for scheme, placement in self.placements.items():
            was = {k: placement.node_of(k) for k in keys}
            placement.resize(after)
            now = {k: placement.node_of(k) for k in keys}
            moved = self.show_moves(scheme, was, now)
            if self.delete_moved:
                self.delete_entries(scheme, moved, was, now)
            record["moved"][scheme] = {k: [was[k], now[k]] for k in moved}
            share = round(len(moved) / len(keys), 3)
            data = {"type": "shard", "scheme": scheme, "nodes": list(after), "moved": len(moved), "change": kind}
            data["node"] = node
            if scheme == "ketama":
                data["points"] = ring_points(placement)
            elif scheme == "slots":
                data["slots"] = record["slots"] = slot_ranges(placement.owner)
            ctx.emit(
                "state",
                actor="router",
                label=f"{scheme}: {len(before)} → {len(after)} nodes moved {len(moved)} keys",
                data=data,
            )
            events.metric(ctx, "keys_moved_share", share, actor="router", scheme=scheme, nodes=len(after))
        self.nodes = after
        self.changes.append(record)
        return record

    def show_moves(self, scheme: str, before: dict, after: dict) -> list[str]:
        """The keys whose node changed, each shown moving."""
        moved = [k for k in self.keys if before[k] != after[k]]
        for k in moved:
            self.ctx.emit(
                "state",
                actor="router",
                label=f"{scheme}: {k} {before[k]} → {after[k]}",
                data={"type": "node", "key": k, "node": after[k], "from": before[k], "scheme": scheme},
            )
        return moved

    def delete_entries(self, scheme: str, moved: list[str], before: dict, after: dict) -> None:
        """Deletes the entries of the keys that moved, on their old node and their new one; on a
        node out of reach the deletes wait for its breaker's probe."""
        by_node: dict[str, list[str]] = {}
        for k in moved:
            by_node.setdefault(before[k], []).append(k)
            by_node.setdefault(after[k], []).append(k)
        for node, names in sorted(by_node.items()):
            cache = self.caches[node]
            for start in range(0, len(names), 500):
                batch = names[start : start + 500]
                entries = [self.store.cache_key(f"{scheme}:{k}") for k in batch]
                used, _ = cache.call(
                    "router", f"DEL {len(batch)} moved {scheme} keys", lambda e=entries, c=cache: c.redis.delete(*e)
                )
                if not used:
                    for k in batch:
                        cache.breaker.defer(f"{scheme}:{k}", f"{node} is not reachable")

    def layout(self) -> None:
        """Where the keys and the nodes sit, for the page: each key's ring position and slot, the
        ring's points and the slot map the run starts with."""
        ring = self.placements["ketama"]
        shown = self.keys[:LAYOUT_KEYS]
        self.ctx.emit(
            "state",
            actor="router",
            label=f"{len(self.keys)} keys over {len(self.nodes)} nodes",
            data={
                "type": "layout",
                "nodes": list(self.nodes),
                "keys": {k: [ring.ring.get_key(k), Slots.slot_of(k)] for k in shown},
                "points": ring_points(ring),
                "slots": slot_ranges(self.placements["slots"].owner),
                "modulo": {k: self.placements["modulo"].node_of(k) for k in shown},
            },
        )


def sharding(ctx: Any) -> dict:
    p = ctx.params
    store = Store(ctx.nodes, NODES[0])
    keys = store.create(p["keys"], random.Random(ctx.seed))
    caches = {
        node: GuardedCache(
            ctx, store, CircuitBreaker(ctx, node, failures=BREAKER_FAILURES, cool_down_s=COOL_DOWN_S), node
        )
        for node in NODES
    }
    restarts_come_back_cold(ctx, caches)
    router = Router(ctx, store, keys, caches, delete_moved=p["delete_moved"])
    router.on_buttons()
    clients = [
        ShardClient(ctx, f"c{i}", store, caches, ttl_ms=p["ttl_ms"], placements=router.placements)
        for i in range(1, p["clients"] + 1)
    ]
    workload = Workload(ctx, [c.name for c in clients], keys)
    # The schedule's probes: for each placement, the hottest key that moves when the fourth node
    # joins. c1 reads them before the join (their entries sit on their old nodes), writes them while
    # the new node serves them, and reads them again once it has left and they are back home.
    probes = []
    for scheme in SCHEMES:
        first, joined = placements(scheme, keys)[:2]
        probe = next((k for k in keys if first[k] != joined[k]), None)
        if probe is not None and probe not in probes:
            probes.append(probe)
    schedule: dict[str, dict] = {"probes": {}, "written": {}, "read_back": {}}
    loads: dict[str, list] = {scheme: [] for scheme in SCHEMES}
    added = None

    def phase(steps: int) -> None:
        nodes = router.nodes
        ctx.emit("phase", actor="clients", label=f"clients over {len(nodes)} nodes", data={"phase": "workload"})
        for c in clients:
            for counter in c.load_by_node.values():
                counter.clear()
        for _ in range(steps):
            rounds(ctx, clients, workload, 1)
            router.apply_pending()
        for scheme in SCHEMES:
            load = Counter()
            for c in clients:
                load.update(c.load_by_node[scheme])
            served = sorted(set(nodes) | set(router.nodes) | set(load))
            loads[scheme].append({n: load[n] for n in served})
            for n in served:
                events.metric(ctx, "node_load", load[n], actor="router", scheme=scheme, node=n)

    router.layout()
    try:
        phase(p["steps"])
        for k in probes:
            schedule["probes"][k] = clients[0].read(k)
        added = router.spare()
        if added is None:
            ctx.emit("log", actor="router", label="no node left to add: the schedule's join is skipped")
        else:
            router.ask("add", added, "the scenario")
            router.apply_pending()
            ctx.step()
            for k in probes:
                schedule["written"][k] = clients[0].write(k)
        phase(p["steps"])
        if added is not None and added in router.planned() and len(router.planned()) > 1:
            router.ask("remove", added, "the scenario")
            router.apply_pending()
            ctx.step()
            for k in probes:
                schedule["read_back"][k] = clients[0].read(k)
        else:
            ctx.emit("log", actor="router", label="the node the schedule added has left already: its leave is skipped")
        phase(p["steps"])
        router.apply_pending()
        # The checkers read every node: each is brought back, and every delete that waited is made.
        for cache in caches.values():
            ensure_up(ctx, cache)
            trust_again(ctx, cache)
    finally:
        for c in clients:
            c.close()
        for cache in caches.values():
            cache.close()
    membership = [list(START), *[c["after"] for c in router.changes]]
    return {
        "membership": membership,
        "changes": router.changes,
        "keys": len(keys),
        "schemes": {
            scheme: {
                "moves": [
                    {
                        "nodes": c["after"],
                        "moved": len(c["moved"][scheme]),
                        "share": round(len(c["moved"][scheme]) / len(keys), 3),
                    }
                    for c in router.changes
                ],
                "load": loads[scheme],
            }
            for scheme in SCHEMES
        },
        "delete_moved": p["delete_moved"],
        **schedule,
        "redis_node": store.redis_node,
    }
