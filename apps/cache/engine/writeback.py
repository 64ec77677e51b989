"""Write-behind against write-through, on a dedicated Redis node that is SIGKILLed. Plain Python.

Write-behind: a write is acknowledged once Redis holds it. A Lua script sets the entry to
`<version + 1>|<value>` (with no TTL: a dirty entry must not expire before it is flushed) and adds
the key to a set of dirty keys; a flusher later takes the dirty keys in batches and writes their
entries to the items table in one transaction. Whatever the cache holds between two flushes exists
nowhere else: kill the node and those acknowledged writes are gone.

Write-through: a write commits the row first, then sets the entry (only if it is newer than the
cached one, so two writers racing cannot leave the older version cached), and only then is it
acknowledged. The same kill costs nothing but a cold cache.

The schedule is the same for both: `steps` rounds of the clients' operations (the flusher runs after
every `flush_every`-th round), then the node is killed before the next flush, restarted, the flusher
runs once more, and every key written is read again. The node's buttons act between rounds, with
the clients behind a circuit breaker (breaker.py): reads go to the table while the node is out of
reach, write-behind refuses a write it cannot put in the cache (the client is told), write-through
acknowledges from the table and deletes the entries it could not set before the cache is trusted
again. Whatever was not flushed when the node died is lost, by the schedule's kill or a button's.
"""

from __future__ import annotations

import random
from typing import Any

from apps.runs.engine_api import describe_error

from . import events
from .aside import run_round
from .breaker import (
    UNREACHABLE,
    BreakerClient,
    CircuitBreaker,
    GuardedCache,
    ensure_up,
    restarts_come_back_cold,
    scheduled_fault,
    trust_again,
    wait_out_cool_down,
    without_persistence,
)
from .store import Store, encode, value_of
from .workload import Zipf

# The breaker of the writes' clients: a few failures open it, a short cool-down before a probe.
BREAKER_FAILURES = 3
COOL_DOWN_S = 0.3

# KEYS: the entry, the dirty set. ARGV: the value, the key's name, the row's version ('' unknown).
# Returns the version the write is acknowledged with, or false when the entry is absent and the
# row's version is not known yet (the client reads the row and asks again).
WRITE_BEHIND = """
local cur = redis.call('GET', KEYS[1])
local base
if cur then
  base = tonumber(string.match(cur, '^(%d+)|'))
elseif ARGV[3] ~= '' then
  base = tonumber(ARGV[3])
else
  return false
end
local version = base + 1
redis.call('SET', KEYS[1], version .. '|' .. ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return version
"""

# KEYS: the dirty set. ARGV: the entries' key prefix, the batch size. Takes up to a batch of dirty
# keys and their entries in one step, so a write landing after it dirties its key again.
TAKE_DIRTY = """
local keys = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
local out = {}
for _, k in ipairs(keys) do
  out[#out + 1] = k
  out[#out + 1] = redis.call('GET', ARGV[1] .. k) or ''
end
return out
"""

# KEYS: entries just flushed. ARGV: each one's flushed entry, then the TTL. A flushed entry is clean
# and may expire like any cached value; one rewritten since the flush is dirty again and keeps no TTL.
MARK_CLEAN = """
local ttl = ARGV[#ARGV]
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[i] then
    redis.call('PEXPIRE', k, ttl)
    n = n + 1
  end
end
return n
"""

# KEYS: the entry. ARGV: the version, the entry, the TTL. Sets the entry unless the cache already
# holds this version or a newer one; returns 1 when set.
SET_IF_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(string.match(cur, '^(%d+)|')) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# Flushes never move a row backwards: a batch taken earlier cannot overwrite a later one.
FLUSH_ITEM = "UPDATE items SET value = %s, version = %s, updated_at = NOW(6) WHERE `key` = %s AND version < %s"


def dirty_key(store: Store) -> str:
    return store.nodes.key("writeback", "dirty")


class WriteBehindClient(BreakerClient):
    """Reads cache-aside through the breaker (a fill never overwrites an entry a write put there
    meanwhile); writes go to the cache only and are acknowledged from it. With the cache node out
    of reach a write has nowhere to go: it fails, and the client is told so."""

    def write(self, key: str) -> int | None:
        op = self.ctx.history.invoke(self.name, "write", {"key": key})
        value = value_of(self.rng)
        names = (self.store.cache_key(key), dirty_key(self.store))

        def write_entry(row_version: str) -> tuple[bool, Any]:
            return self.cache.call(
                self.name,
                f"EVAL write-behind {key}",
                lambda: self.cache.redis.eval(WRITE_BEHIND, 2, *names, value, key, row_version),
            )

        used, version = write_entry("")
        if used and version is None:  # not cached: the next version follows the row's
            used, version = write_entry(str(self.load(key)[0]))
        if not used:
            self.errors += 1
            self.ctx.history.fail(op, {"key": key}, error=f"{self.cache.node} is not reachable: the write is refused")
            events.entry(self.ctx, key, "refused", None, by=self.name, reason="the cache node is not reachable")
            return None
        version = int(version)
        events.entry(self.ctx, key, "set", version, by=self.name, dirty=True)
        self.ctx.history.ok(op, {"key": key, "version": version, "acknowledged_by": "cache"})
        return version

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        name = self.store.cache_key(key)
        used, done = self.cache.call(
            self.name,
            f"SET {key} v{version} PX {ttl_ms} NX",
            lambda: self.cache.redis.set(name, encode(version, value), px=ttl_ms, nx=True),
        )
        if used and done:
            events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl_ms)


class WriteThroughClient(BreakerClient):
    """Writes commit the row, then set the entry, then are acknowledged; fills and sets alike
    never replace a newer cached version with an older one. A write whose entry cannot be set
    (the node down or paused) is acknowledged all the same, since the row holds it, and its key
    waits for the breaker's probe to delete the entry before the cache is trusted again."""

    def _set_if_newer(self, key: str, version: int, value: str, ttl_ms: int) -> tuple[bool, Any]:
        name = self.store.cache_key(key)
        return self.cache.call(
            self.name,
            f"EVAL set-if-newer {key} v{version} PX {ttl_ms}",
            lambda: self.cache.redis.eval(SET_IF_NEWER, 1, name, version, encode(version, value), ttl_ms),
        )

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        used, done = self._set_if_newer(key, version, value, ttl_ms)
        if used:
            events.entry(self.ctx, key, "set" if done else "refused", version, by=self.name, ttl_ms=ttl_ms)

    def write(self, key: str) -> int:
        op = self.ctx.history.invoke(self.name, "write", {"key": key})
        version, value = self.commit(key)
        used, done = self._set_if_newer(key, version, value, self.ttl_ms)
        if used:
            events.entry(self.ctx, key, "set" if done else "refused", version, by=self.name, ttl_ms=self.ttl_ms)
        else:
            self.cache.breaker.defer(key, "the entry could not be set")
        self.ctx.history.ok(op, {"key": key, "version": version})
        return version


class Flusher:
    """Takes the dirty keys in batches and writes their cached entries to the items table. With
    the cache node out of reach it writes nothing: the dirty keys wait in the node, if it lives."""

    def __init__(self, ctx: Any, store: Store, cache: GuardedCache, *, batch: int, ttl_ms: int):
        self.ctx, self.store, self.cache, self.batch, self.ttl_ms = ctx, store, cache, batch, ttl_ms
        self.conn = store.db()
        self.flushed: list[dict] = []

    def dirty(self) -> list[str]:
        r = self.cache.redis
        try:
            names = self.ctx.cmd(
                self.cache.node, "SMEMBERS dirty", lambda: r.smembers(dirty_key(self.store)), actor="flusher"
            )
        except UNREACHABLE:
            return []
        return sorted(names)

    def flush(self) -> int:
        """Every dirty key written to the table; returns how many rows it wrote."""
        try:
            return self._flush()
        except UNREACHABLE as exc:
            self.ctx.emit(
                "log", actor="flusher", label=f"the flusher cannot reach {self.cache.node}: {describe_error(exc)}"
            )
            return 0

    def _flush(self) -> int:
        r = self.cache.redis
        node = self.cache.node
        prefix = self.store.cache_key("")
        written = 0
        while True:
            taken = self.ctx.cmd(
                node,
                f"EVAL take-dirty {self.batch}",
                lambda: r.eval(TAKE_DIRTY, 1, dirty_key(self.store), prefix, self.batch),
                actor="flusher",
            )
            pairs = [(k, e) for k, e in zip(taken[::2], taken[1::2], strict=True) if e]
            if not pairs:
                return written
            rows = []
            for key, entry in pairs:
                version, _, value = entry.partition("|")
                rows.append((value, int(version), key, int(version)))
            # The batch has left the dirty set: a flush that fails from here on loses it, which is
            # the price of taking it in one step (and no worse than the kill this lab is about).
            with self.conn.cursor() as cur:
                # One transaction per batch: the batch is in the table entirely or not at all.
                self.ctx.cmd(self.store.db_node, "BEGIN", lambda: cur.execute("BEGIN"), actor="flusher")
                self.ctx.cmd(
                    self.store.db_node,
                    f"UPDATE items × {len(rows)} (batch)",
                    lambda rows=rows: cur.executemany(FLUSH_ITEM, rows),
                    actor="flusher",
                )
                self.ctx.cmd(self.store.db_node, "COMMIT", lambda: cur.execute("COMMIT"), actor="flusher")
            for _value, version, key, _ in rows:
                events.row(self.ctx, key, version, by="flusher")
                self.flushed.append({"key": key, "version": version})
            written += len(rows)
            names = [prefix + k for k, _ in pairs]
            flushed = [e for _, e in pairs]
            self.ctx.cmd(
                node,
                f"EVAL mark-clean × {len(names)} PX {self.ttl_ms}",
                lambda names=names, flushed=flushed: r.eval(MARK_CLEAN, len(names), *names, *flushed, self.ttl_ms),
                actor="flusher",
            )

    def close(self) -> None:
        self.conn.close()


def run_writes(ctx: Any, mode: str) -> dict:
    """The shared schedule; `mode` is "behind" or "through". The Redis node's buttons (kill,
    restart, pause, resume) act between rounds: the clients read from the table while the
    breaker keeps them off the node, write-behind refuses the writes it cannot put in the cache,
    and write-through keeps acknowledging from the table."""
    p = ctx.params
    store = Store(ctx.nodes)
    node = store.cache_node()
    keys = store.create(p["keys"], random.Random(ctx.seed))
    cache = GuardedCache(ctx, store, CircuitBreaker(ctx, node, failures=BREAKER_FAILURES, cool_down_s=COOL_DOWN_S))
    restarts_come_back_cold(ctx, {node: cache})
    without_persistence(ctx, cache)
    kind = WriteBehindClient if mode == "behind" else WriteThroughClient
    clients = [kind(ctx, f"c{i}", store, cache, ttl_ms=p["ttl_ms"]) for i in range(1, p["clients"] + 1)]
    rngs = {c.name: random.Random(f"{ctx.seed}:{c.name}:ops") for c in clients}
    zipfs = {c.name: Zipf(keys, p["zipf"], rngs[c.name]) for c in clients}
    flusher = Flusher(ctx, store, cache, batch=p["batch"], ttl_ms=p["ttl_ms"]) if mode == "behind" else None
    how = "acknowledged from the cache, flushed later" if flusher else "committed, then cached, then acknowledged"
    ctx.emit("phase", actor="clients", label=f"clients read and write: writes {how}", data={"phase": "workload"})
    try:
        for step in range(1, p["steps"] + 1):
            run_round(ctx, clients, zipfs, rngs)
            reads = sum(c.hits + c.misses for c in clients)
            if reads:
                events.metric(ctx, "hit_ratio", round(sum(c.hits for c in clients) / reads, 3))
            if flusher and step % p["flush_every"] == 0 and step < p["steps"]:
                ctx.emit("phase", actor="flusher", label="the flusher writes the dirty keys", data={"phase": "flush"})
                flusher.flush()
            ctx.step()

        dirty = flusher.dirty() if flusher else []
        label = f"{node} SIGKILLed before the next flush" + (f" ({len(dirty)} dirty keys)" if flusher else "")
        ctx.emit("phase", actor="operator", label=label, data={"phase": "kill", "dirty": dirty})
        scheduled_fault(ctx, "kill", node)
        ctx.step()
        scheduled_fault(ctx, "restart", node)
        ensure_up(ctx, cache)
        if flusher:
            ctx.emit("phase", actor="flusher", label="the flusher runs again", data={"phase": "flush"})
            flusher.flush()
        ctx.step()
        ensure_up(ctx, cache)
        # What a button left unreachable is probed by the read-back once its cool-down is over.
        wait_out_cool_down(ctx, cache.breaker)

        written = sorted({op["value"]["key"] for op in ctx.history.completed("write") if op["type"] == "ok"})
        ctx.emit("phase", actor="clients", label="every key written is read again", data={"phase": "read-back"})
        for key in written:
            clients[0].read(key)
        trust_again(ctx, cache)
        return {
            "mode": mode,
            "redis_node": None,
            "written": written,
            "dirty_at_kill": dirty,
            "flushed": flusher.flushed if flusher else [],
            "refused_writes": sum(c.errors for c in clients),
        }
    finally:
        for c in clients:
            c.close()
        if flusher:
            flusher.close()
        cache.close()


def write_behind(ctx: Any) -> dict:
    return run_writes(ctx, "behind")


def write_through(ctx: Any) -> dict:
    return run_writes(ctx, "through")
