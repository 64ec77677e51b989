"""Cache avalanche: many entries loaded at once with one TTL expire at once. Plain Python.

Two runs over the same keys and the same seeded reads:

- `fixed`     every entry is loaded with `ttl_ms`; one TTL later they all expire within a moment,
              every read misses, and the database's read rate spikes.
- `jittered`  every entry (loaded or refilled) lives `ttl_ms × (1 + U(0, jitter))`: the expiries
              spread over `jitter` TTLs and the database sees a trickle.

Each client reads a batch of distinct keys every tick (one `MGET`), reads the missing rows in one
`SELECT … IN`, and fills them in one pipeline. Each batch is an operation of the history:
{keys, db: the keys it read from the database, variant}. The expiry runs on Redis's own clock, so
the step boundaries are between the two runs: a pause inside one would let the TTLs run out unseen.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from . import events
from .store import Store, encode

VARIANTS = ("fixed", "jittered")


class AvalancheClient:
    def __init__(self, ctx: Any, name: str, store: Store, variant: str, keys: list[str]):
        self.ctx, self.name, self.store, self.variant, self.keys = ctx, name, store, variant, keys
        self.p = ctx.params
        self.conn = store.db()
        self.r = store.redis()
        self.rng = random.Random(f"{ctx.seed}:{name.split('-')[-1]}")
        self.ttl_rng = random.Random(f"{ctx.seed}:{name}:ttl")
        self.db_reads = 0

    def ttl(self) -> int:
        return ttl_of(self.p, self.variant, self.ttl_rng)

    def read_batch(self) -> None:
        batch = self.rng.sample(self.keys, min(self.p["batch"], len(self.keys)))
        op = self.ctx.history.invoke(self.name, "read", {"keys": batch, "variant": self.variant})
        names = [self.store.cache_key(k) for k in batch]
        node = self.store.cache_node()
        cached = self.ctx.cmd(node, f"MGET {len(batch)} keys", lambda: self.r.mget(names), actor=self.name)
        missing = [k for k, entry in zip(batch, cached, strict=True) if entry is None]
        if missing:
            self.db_reads += len(missing)
            marks = ", ".join(["%s"] * len(missing))
            with self.conn.cursor() as cur:
                self.ctx.cmd(
                    self.store.db_node,
                    f"SELECT items {len(missing)} keys",
                    lambda: cur.execute(f"SELECT `key`, value, version FROM items WHERE `key` IN ({marks})", missing),
                    actor=self.name,
                )
                rows = cur.fetchall()

            def fill():
                pipe = self.r.pipeline(transaction=False)
                for key, value, version in rows:
                    pipe.set(self.store.cache_key(key), encode(int(version), value), px=self.ttl())
                return pipe.execute()

            self.ctx.cmd(node, f"SET {len(rows)} keys PX", fill, actor=self.name)
        self.ctx.history.ok(op, {"keys": batch, "db": missing, "variant": self.variant})

    def close(self) -> None:
        self.conn.close()


def ttl_of(p: dict, variant: str, rng: random.Random) -> int:
    if variant == "fixed":
        return p["ttl_ms"]
    return round(p["ttl_ms"] * (1.0 + rng.uniform(0.0, p["jitter"])))


def load_all(ctx: Any, store: Store, variant: str) -> None:
    """Every row into the cache in one pipeline, as a warm-up or a bulk load does."""
    r = store.redis()
    rng = random.Random(f"{ctx.seed}:load")
    conn = store.db()
    try:
        with conn.cursor() as cur:
            ctx.cmd(
                store.db_node,
                "SELECT every item",
                lambda: cur.execute("SELECT `key`, value, version FROM items"),
                actor="loader",
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    old = ctx.cmd(
        store.cache_node(),
        "SCAN the run's cache",
        lambda: list(r.scan_iter(match=store.cache_key("*"), count=1000)),
        actor="loader",
        summary=len,
    )

    def load():
        pipe = r.pipeline(transaction=False)
        if old:
            pipe.delete(*old)
        for key, value, version in rows:
            pipe.set(store.cache_key(key), encode(int(version), value), px=ttl_of(ctx.params, variant, rng))
        return pipe.execute()

    ctx.cmd(store.cache_node(), f"SET {len(rows)} keys PX ({variant} TTL)", load, actor="loader")


def run_variant(ctx: Any, store: Store, variant: str, keys: list[str]) -> dict:
    p = ctx.params
    ctx.emit(
        "phase", actor="clients", label=f"{variant}: load {len(keys)} keys at once, then read", data={"phase": variant}
    )
    clients = [AvalancheClient(ctx, f"{variant}-c{i}", store, variant, keys) for i in range(1, p["clients"] + 1)]
    errors: list[BaseException] = []
    tick = p["tick_ms"] / 1000.0
    try:
        load_all(ctx, store, variant)
        began = ctx.clock
        # Past the last expiry the jitter allows, and a few ticks for the misses to be read; both
        # runs read for as long, so their charts line up.
        until = began + p["ttl_ms"] * (1.0 + p["jitter"]) + 4 * p["tick_ms"]

        def work(client: AvalancheClient) -> None:
            n = 0
            try:
                while not ctx.cancelled.is_set():
                    due = began + n * p["tick_ms"]
                    if due >= until:
                        return
                    if ctx.clock < due:
                        ctx.cancelled.wait((due - ctx.clock) / 1000.0)
                    client.read_batch()
                    n += 1
            except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,), name=c.name) for c in clients]
        for t in threads:
            t.start()
        last = 0
        while any(t.is_alive() for t in threads):
            ctx.cancelled.wait(tick)
            db = sum(c.db_reads for c in clients)
            events.metric(ctx, "db_reads_per_s", round((db - last) / tick, 1), series=variant)
            last = db
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        ctx.step()
        return {"db_reads": sum(c.db_reads for c in clients)}
    finally:
        for c in clients:
            c.close()


def avalanche(ctx: Any) -> dict:
    store = Store(ctx.nodes)
    keys = store.create(ctx.params["keys"], random.Random(ctx.seed))
    variants = {v: run_variant(ctx, store, v, keys) for v in VARIANTS}
    return {"variants": variants, "redis_node": store.redis_node}
