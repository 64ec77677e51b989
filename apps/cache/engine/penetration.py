"""Cache penetration: reads of keys that are in no row. Plain Python.

A cache only holds what the database has, so a read of an absent key misses every time and reaches
the database every time: a cheap way to overload it, by accident or on purpose. Three variants, the
same seeded workload:

- `none`    every absent read queries the database.
- `nulls`   the answer "absent" is cached too, as a null entry (`0|`, version 0) with a short TTL.
- `bloom`   a Bloom filter of the table's keys (rbloom, in each client's process, sized for `keys`
            at `fp_rate`) rules an absent key out before any command; a false positive reads the
            database as `none` does.

Each read is an operation of the history: {key, version (None: absent), from, variant}, `from`
being `cache`, `null` (a cached null), `bloom` (ruled out by the filter) or `db`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

from rbloom import Bloom

from . import events
from .store import SELECT_ITEM, Store, decode, encode
from .workload import Zipf, on_threads

VARIANTS = ("none", "nulls", "bloom")
NULL = encode(0, "")  # version 0: no row has it, every row starts at 1


def absent_name(i: int) -> str:
    return f"absent{i:05d}"


def stable_hash(key: str) -> int:
    """A 128-bit hash that is the same in every process (Python's own `hash` of a str is not), so a
    filter rebuilt by the checker is the clients' filter, bit for bit."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=16).digest(), "big", signed=True)


def bloom_for(keys: Iterable[str], capacity: int, fp_rate: float) -> Bloom:
    """A filter sized for `capacity` keys at `fp_rate`, holding `keys`."""
    bloom = Bloom(max(1, capacity), fp_rate, hash_func=stable_hash)
    bloom.update(keys)
    return bloom


class PenetrationClient:
    def __init__(self, ctx: Any, name: str, store: Store, variant: str, bloom: Bloom | None):
        self.ctx, self.name, self.store, self.variant, self.bloom = ctx, name, store, variant, bloom
        self.p = ctx.params
        self.conn = store.db()
        self.r = store.redis()
        self.absent_db_reads = 0

    def read(self, key: str) -> None:
        op = self.ctx.history.invoke(self.name, "read", {"key": key, "variant": self.variant})
        version, source = self._read(key)
        self.ctx.history.ok(op, {"key": key, "version": version, "from": source, "variant": self.variant})
        events.read(self.ctx, self.name, key, version, source, variant=self.variant)

    def _read(self, key: str) -> tuple[int | None, str]:
        if self.bloom is not None and key not in self.bloom:
            return None, "bloom"
        node, name = self.store.cache_node(), self.store.cache_key(key)
        entry = decode(self.ctx.cmd(node, f"GET {key}", lambda: self.r.get(name), actor=self.name))
        if entry is not None:
            return (None, "null") if entry[0] == 0 else (entry[0], "cache")
        with self.conn.cursor() as cur:
            self.ctx.cmd(
                self.store.db_node, f"SELECT items {key}", lambda: cur.execute(SELECT_ITEM, (key,)), actor=self.name
            )
            row = cur.fetchone()
        if row is None:
            self.absent_db_reads += 1
            if self.variant == "nulls":
                ttl = self.p["null_ttl_ms"]
                self.ctx.cmd(node, f"SET {key} null PX {ttl}", lambda: self.r.set(name, NULL, px=ttl), actor=self.name)
                events.entry(self.ctx, key, "set", 0, by=self.name, ttl_ms=ttl, null=True)
            return None, "db"
        value, version = row
        ttl = self.p["ttl_ms"]
        self.ctx.cmd(
            node,
            f"SET {key} v{version} PX {ttl}",
            lambda: self.r.set(name, encode(version, value), px=ttl),
            actor=self.name,
        )
        events.entry(self.ctx, key, "set", int(version), by=self.name, ttl_ms=ttl)
        return int(version), "db"

    def close(self) -> None:
        self.conn.close()


def build_bloom(ctx: Any, store: Store) -> Bloom:
    """The filter of every key in the table, as a client would build it at start-up."""
    conn = store.db()
    try:
        with conn.cursor() as cur:
            ctx.cmd(
                store.db_node, "SELECT `key` FROM items", lambda: cur.execute("SELECT `key` FROM items"), actor="bloom"
            )
            keys = [k for (k,) in cur.fetchall()]
    finally:
        conn.close()
    return bloom_for(keys, ctx.params["keys"], ctx.params["fp_rate"])


def flush(ctx: Any, store: Store) -> None:
    r = store.redis()
    names = ctx.cmd(
        store.cache_node(),
        "SCAN the run's cache",
        lambda: list(r.scan_iter(match=store.cache_key("*"), count=1000)),
        actor="clients",
        summary=len,
    )
    if names:
        ctx.cmd(store.cache_node(), f"DEL {len(names)} cached entries", lambda: r.delete(*names), actor="clients")


def run_variant(ctx: Any, store: Store, variant: str, keys: list[str], absent: list[str]) -> dict:
    p = ctx.params
    ctx.emit(
        "phase",
        actor="clients",
        label=f"{variant}: clients read, {p['absent_ratio']:.0%} absent keys",
        data={"phase": variant},
    )
    flush(ctx, store)
    bloom = build_bloom(ctx, store) if variant == "bloom" else None
    clients = [PenetrationClient(ctx, f"{variant}-c{i}", store, variant, bloom) for i in range(1, p["clients"] + 1)]
    # The same draws in every variant: the variants differ only in how they answer.
    rngs = {c.name: random.Random(f"{ctx.seed}:c{i}") for i, c in enumerate(clients, 1)}
    zipfs = {c.name: Zipf(keys, p["zipf"], rngs[c.name]) for c in clients}

    def work(client: PenetrationClient) -> None:
        rng = rngs[client.name]
        for _ in range(p["ops"]):
            key = rng.choice(absent) if rng.random() < p["absent_ratio"] else zipfs[client.name].draw()
            client.read(key)

    try:
        for _ in range(p["steps"]):
            on_threads(clients, work)
            events.metric(ctx, "absent_db_reads", sum(c.absent_db_reads for c in clients), series=variant)
            ctx.step()
        return {"absent_db_reads": sum(c.absent_db_reads for c in clients)}
    finally:
        for c in clients:
            c.close()


def penetration(ctx: Any) -> dict:
    p = ctx.params
    store = Store(ctx.nodes)
    keys = store.create(p["keys"], random.Random(ctx.seed))
    absent = [absent_name(i) for i in range(1, p["absent_keys"] + 1)]
    variants = {v: run_variant(ctx, store, v, keys, absent) for v in VARIANTS}
    # The clients' own measure of their filter, charted beside what the formula predicts.
    bloom = build_bloom(ctx, store)
    probes = [f"probe{i:06d}" for i in range(1, p["probes"] + 1)]
    measured = sum(name in bloom for name in probes) / len(probes)
    events.metric(ctx, "bloom_false_positive_rate", round(measured, 5), series="measured")
    events.metric(ctx, "bloom_false_positive_rate", p["fp_rate"], series="target")
    return {"variants": variants, "bloom_fp_rate": measured, "redis_node": store.redis_node}
