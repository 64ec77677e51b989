"""Cache-aside clients, one operation at a time or in the steps a race is made of. Plain Python.

A read is `GET`; on a miss it reads the row and fills the cache with `SET … EX` (the TTL). A write
commits the row (version + 1) and then, by the client's policy, deletes the cache entry or updates
it. Every read and write is an operation of the run's history with the version it returned or
committed — what the checkers judge — and every command is recorded through ctx.cmd.

The steps (`get`, `load`, `fill`, `commit`, `invalidate`, `update_entry`) let a scenario schedule a
race exactly (a reader's fill after a writer's delete) on real servers; `read()` and `write()` are
the whole operations a workload runs.
"""

from __future__ import annotations

import random
from typing import Any

from . import events
from .store import SELECT_ITEM, UPDATE_ITEM, Store, decode, encode, value_of


class Client:
    def __init__(self, ctx: Any, name: str, store: Store, *, ttl_ms: int, policy: str = "delete"):
        self.ctx, self.name, self.store = ctx, name, store
        self.ttl_ms, self.policy = ttl_ms, policy
        self.conn = store.db()
        # Each client draws from a generator of its own: clients run on threads at once.
        self.rng = random.Random(f"{ctx.seed}:{name}")
        self.hits = self.misses = self.db_reads = 0

    # Steps -------------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[int, str] | None:
        r = self.store.redis()
        entry = self.ctx.cmd(
            self.store.cache_node(), f"GET {key}", lambda: r.get(self.store.cache_key(key)), actor=self.name
        )
        return decode(entry)

    def load(self, key: str) -> tuple[int, str]:
        """The row as the database has it now: (version, value)."""
        self.db_reads += 1
        with self.conn.cursor() as cur:
            self.ctx.cmd(
                self.store.db_node, f"SELECT items {key}", lambda: cur.execute(SELECT_ITEM, (key,)), actor=self.name
            )
            value, version = cur.fetchone()
        return int(version), value

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        r = self.store.redis()
        self.ctx.cmd(
            self.store.cache_node(),
            f"SET {key} v{version} PX {ttl_ms}",
            lambda: r.set(self.store.cache_key(key), encode(version, value), px=ttl_ms),
            actor=self.name,
        )
        events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl_ms)

    def commit(self, key: str) -> tuple[int, str]:
        """Writes a new value to the row; returns the (version, value) committed."""
        value = value_of(self.rng)
        with self.conn.cursor() as cur:
            self.ctx.cmd(
                self.store.db_node,
                f"UPDATE items {key}",
                lambda: cur.execute(UPDATE_ITEM, (value, key)),
                actor=self.name,
            )
            version = int(cur.lastrowid)  # the LAST_INSERT_ID(version + 1) of this very statement
        events.row(self.ctx, key, version, by=self.name)
        return version, value

    def invalidate(self, key: str) -> None:
        r = self.store.redis()
        self.ctx.cmd(
            self.store.cache_node(), f"DEL {key}", lambda: r.delete(self.store.cache_key(key)), actor=self.name
        )
        events.entry(self.ctx, key, "delete", None, by=self.name)

    def update_entry(self, key: str, version: int, value: str) -> None:
        self.fill(key, version, value)

    def serve(self, key: str) -> tuple[int, str]:
        """The cache-aside path: the cached version, or on a miss the row's, filled into the cache;
        returns (version, "cache" | "db")."""
        cached = self.get(key)
        if cached is not None:
            self.hits += 1
            return cached[0], "cache"
        self.misses += 1
        version, value = self.load(key)
        self.fill(key, version, value)
        return version, "db"

    # Whole operations --------------------------------------------------------------------------
    def read(self, key: str) -> int:
        """One cache-aside read, recorded in the history; returns the version served."""
        op = self.ctx.history.invoke(self.name, "read", {"key": key})
        version, source = self.serve(key)
        self.ctx.history.ok(op, {"key": key, "version": version, "from": source})
        events.read(self.ctx, self.name, key, version, source)
        return version

    def write(self, key: str) -> int:
        """One write: the row committed, then the cache entry deleted or updated (the policy)."""
        op = self.ctx.history.invoke(self.name, "write", {"key": key})
        version, value = self.commit(key)
        if self.policy == "update":
            self.update_entry(key, version, value)
        else:
            self.invalidate(key)
        self.ctx.history.ok(op, {"key": key, "version": version})
        return version

    def close(self) -> None:
        self.conn.close()
