"""Thundering herd: one hot key expires while N clients (threads) read it at once. Plain Python.

Every variant reads the same hot key for the same rounds; only what a client does on a miss differs:

- `none`    every client that misses rebuilds the entry itself: N database queries per expiry.
- `mutex`   a client that misses takes `SET lock NX PX`, checks the cache again, rebuilds and
            releases; the others wait and read the cache again.
- `lease`   memcache's leases (leases.py): a miss hands one reader a token to fill the key, the
            others are told to wait and read again.
- `xfetch`  probabilistic early recomputation (Vattani et al.): a client that hits recomputes when
            `now - delta * beta * ln(rand()) >= expiry` (delta the measured rebuild time, kept in the
            entry; `expiry - now` is the entry's PTTL), so the entry is renewed before it expires
            and nobody waits. The early recompute takes an `NX` claim: without it the readers who
            draw an early recompute during one rebuild all query (about e - 1 extra each expiry
            at beta = 1). A miss all the same (a cold key, a paused run) falls back to the mutex.

The rebuild is made slow on the server, inside the one statement that reads the row
(`… AND SLEEP(rebuild) = 0`), so the herd is real: every client that misses while it runs queries too.
Each read is an operation of the history with where it was served from (`cache`, `db`, `wait`,
`early`) and its latency: what the checker counts DB queries per expiry from.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from apps.runs.engine_api import RunStopped

from . import events
from .leases import Leases
from .store import Store, decode, encode
from .workload import on_threads

VARIANTS = ("none", "mutex", "lease", "xfetch")
PROTECTED = ("mutex", "lease", "xfetch")
# The row read as an expensive query would: the server spends `rebuild_ms` on it.
REBUILD_ITEM = "SELECT value, version FROM items WHERE `key` = %s AND SLEEP(%s) = 0"
# Release a lock only while it is still ours: it may have expired and been taken by another client.
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
WAIT_MS = 25  # how often a client waiting on a rebuild reads the cache again


class HerdClient:
    def __init__(self, ctx: Any, name: str, store: Store, variant: str, leases: Leases | None = None):
        self.ctx, self.name, self.store, self.variant, self.leases = ctx, name, store, variant, leases
        self.p = ctx.params
        self.conn = store.db()
        self.r = store.redis()
        self.rng = random.Random(f"{ctx.seed}:{variant}:{name}")
        self.latencies: list[float] = []
        self.db_reads = self.locks = 0

    # Commands ----------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[tuple[int, str] | None, int]:
        """The entry and its remaining life in ms (PTTL), in one round trip."""

        def call():
            pipe = self.r.pipeline(transaction=False)
            pipe.get(self.store.cache_key(key))
            pipe.pttl(self.store.cache_key(key))
            return pipe.execute()

        entry, pttl = self.ctx.cmd(self.store.cache_node(), f"GET {key} + PTTL", call, actor=self.name)
        return decode(entry), pttl

    def rebuild(self, key: str) -> tuple[int, str, float]:
        """The row, read the slow way: (version, value, ms it took)."""
        self.db_reads += 1
        seconds = self.p["rebuild_ms"] / 1000.0
        began = time.perf_counter()
        with self.conn.cursor() as cur:
            self.ctx.cmd(
                self.store.db_node,
                f"SELECT items {key} (rebuild {self.p['rebuild_ms']} ms)",
                lambda: cur.execute(REBUILD_ITEM, (key, seconds)),
                actor=self.name,
            )
            value, version = cur.fetchone()
        return int(version), value, (time.perf_counter() - began) * 1000.0

    def fill(self, key: str, version: int, value: str, delta_ms: float) -> None:
        ttl = self.p["ttl_ms"]
        # The entry carries the rebuild time XFetch weighs the early recompute by.
        entry = encode(version, f"{value}|{round(delta_ms)}")
        self.ctx.cmd(
            self.store.cache_node(),
            f"SET {key} v{version} PX {ttl}",
            lambda: self.r.set(self.store.cache_key(key), entry, px=ttl),
            actor=self.name,
        )
        events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl)

    def lock(self, key: str) -> str | None:
        # Who holds it, and which of their locks: unique, and it reads well in the command log.
        self.locks += 1
        token = f"{self.name}.{self.locks}"
        name = self.store.nodes.key("lock", key)
        got = self.ctx.cmd(
            self.store.cache_node(),
            f"SET lock:{key} {token} NX PX {self.p['lock_ms']}",
            lambda: self.r.set(name, token, nx=True, px=self.p["lock_ms"]),
            actor=self.name,
        )
        return token if got else None

    def unlock(self, key: str, token: str) -> None:
        name = self.store.nodes.key("lock", key)
        self.ctx.cmd(
            self.store.cache_node(),
            f"EVAL release lock:{key}",
            lambda: self.r.eval(RELEASE, 1, name, token),
            actor=self.name,
        )

    # Reads -------------------------------------------------------------------------------------
    def read(self, key: str) -> None:
        op = self.ctx.history.invoke(self.name, "read", {"key": key, "variant": self.variant})
        began = time.perf_counter()
        version, source = getattr(self, f"_read_{self.variant}")(key)
        ms = round((time.perf_counter() - began) * 1000.0, 3)
        self.latencies.append(ms)
        value = {"key": key, "version": version, "from": source, "variant": self.variant, "ms": ms}
        self.ctx.history.ok(op, value)
        events.read(self.ctx, self.name, key, version, source, variant=self.variant)

    def _rebuild_and_fill(self, key: str) -> int:
        version, value, ms = self.rebuild(key)
        self.fill(key, version, value, ms)
        return version

    def _read_none(self, key: str) -> tuple[int, str]:
        entry, _ = self.get(key)
        if entry is not None:
            return entry[0], "cache"
        return self._rebuild_and_fill(key), "db"

    def _read_mutex(self, key: str) -> tuple[int, str]:
        entry, _ = self.get(key)
        if entry is not None:
            return entry[0], "cache"
        while True:
            token = self.lock(key)
            if token is not None:
                try:
                    # Checked again under the lock: the previous holder may have filled it already.
                    entry, _ = self.get(key)
                    if entry is not None:
                        return entry[0], "wait"
                    return self._rebuild_and_fill(key), "db"
                finally:
                    self.unlock(key, token)
            if self.ctx.cancelled.wait(WAIT_MS / 1000.0):
                raise RunStopped("the run was stopped")
            entry, _ = self.get(key)
            if entry is not None:
                return entry[0], "wait"

    def _read_lease(self, key: str) -> tuple[int, str]:
        source = "cache"
        while True:
            got = self.leases.get(self.name, key)
            if got.kind == "hit":
                return decode(got.entry)[0], source
            if got.kind == "token":
                version, value, _ = self.rebuild(key)
                self.leases.set(self.name, key, got.token, version, value, self.p["ttl_ms"])
                return version, "db"
            source = "wait"
            if self.ctx.cancelled.wait(WAIT_MS / 1000.0):
                raise RunStopped("the run was stopped")

    def _read_xfetch(self, key: str) -> tuple[int, str]:
        entry, pttl = self.get(key)
        if entry is None:
            return self._read_mutex(key)
        version, rest = entry
        delta = float(rest.rpartition("|")[2] or 0)
        # -ln(u) for u in (0, 1]: 1 - random() never gives ln(0).
        if pttl > 0 and -delta * self.p["beta"] * math.log(1.0 - self.rng.random()) >= pttl:
            token = self.lock(key)
            if token is not None:
                try:
                    # Renewed by the claim's previous holder since this client's GET: nothing to do.
                    again, left = self.get(key)
                    if again is not None and left > pttl:
                        return again[0], "cache"
                    return self._rebuild_and_fill(key), "early"
                finally:
                    self.unlock(key, token)
        return version, "cache"

    def close(self) -> None:
        self.conn.close()


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def run_variant(ctx: Any, store: Store, key: str, variant: str) -> dict:
    """`rounds` rounds of one TTL each: every client reads the hot key every `think_ms`."""
    p = ctx.params
    ctx.emit("phase", actor="clients", label=f"{variant}: {p['clients']} clients read {key}", data={"phase": variant})
    # The lease interval is the lock's: long enough for one rebuild.
    leases = Leases.for_store(ctx, store, lease_ms=p["lock_ms"]) if variant == "lease" else None
    clients = [HerdClient(ctx, f"{variant}-c{i}", store, variant, leases) for i in range(1, p["clients"] + 1)]

    def work(client: HerdClient, deadline: float) -> None:
        while ctx.clock < deadline and not ctx.cancelled.is_set():
            client.read(key)
            ctx.cancelled.wait(p["think_ms"] / 1000.0)

    try:
        # The key starts warm, as a hot key is: the first expiry comes one TTL later.
        r = store.redis()
        ctx.cmd(store.cache_node(), f"DEL {key}", lambda: r.delete(store.cache_key(key)), actor="clients")
        version, value, ms = clients[0].rebuild(key)
        clients[0].fill(key, version, value, ms)
        clients[0].db_reads = 0
        queried = 0
        for _ in range(p["rounds"]):
            deadline = ctx.clock + p["ttl_ms"]
            on_threads(clients, lambda c, deadline=deadline: work(c, deadline))
            db = sum(c.db_reads for c in clients)
            # A round is one TTL: about one expiry of the hot key.
            events.metric(ctx, "db_queries", db - queried, series=variant)
            latency = p99([ms for c in clients for ms in c.latencies])
            if latency is not None:
                events.metric(ctx, "read_p99_ms", latency, series=variant)
            queried = db
            ctx.step()
        latencies = [ms for c in clients for ms in c.latencies]
        return {"reads": len(latencies), "db_reads": queried, "p99_ms": p99(latencies)}
    finally:
        for c in clients:
            c.close()


def thundering_herd(ctx: Any) -> dict:
    store = Store(ctx.nodes)
    keys = store.create(ctx.params["keys"], random.Random(ctx.seed))
    hot = keys[0]
    variants = {v: run_variant(ctx, store, hot, v) for v in VARIANTS}
    return {"key": hot, "variants": variants, "redis_node": store.redis_node}
