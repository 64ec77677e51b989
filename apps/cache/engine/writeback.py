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
runs once more, and every key written is read again.
"""

from __future__ import annotations

import random
from typing import Any

from . import events
from .aside import run_round
from .clients import Client
from .store import Store, encode, value_of
from .workload import Zipf

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


def without_persistence(ctx: Any, store: Store) -> None:
    """A cache node keeps its data in memory only, as most do (the dedicated node starts with an
    append-only file, which would bring the entries back after the kill)."""
    r = store.redis()
    ctx.cmd(store.cache_node(), "CONFIG SET appendonly no", lambda: r.config_set("appendonly", "no"), actor="operator")


class WriteBehindClient(Client):
    """Reads cache-aside (a fill never overwrites an entry a write put there meanwhile); writes go
    to the cache only and are acknowledged from it."""

    def write(self, key: str) -> int:
        op = self.ctx.history.invoke(self.name, "write", {"key": key})
        value = value_of(self.rng)
        r = self.store.redis()
        names = (self.store.cache_key(key), dirty_key(self.store))

        def write_entry(row_version: str) -> int | None:
            return self.ctx.cmd(
                self.store.cache_node(),
                f"EVAL write-behind {key}",
                lambda: r.eval(WRITE_BEHIND, 2, *names, value, key, row_version),
                actor=self.name,
            )

        version = write_entry("")
        if version is None:  # not cached: the next version follows the row's
            version = write_entry(str(self.load(key)[0]))
        version = int(version)
        events.entry(self.ctx, key, "set", version, by=self.name, dirty=True)
        self.ctx.history.ok(op, {"key": key, "version": version, "acknowledged_by": "cache"})
        return version

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        r = self.store.redis()
        done = self.ctx.cmd(
            self.store.cache_node(),
            f"SET {key} v{version} PX {ttl_ms} NX",
            lambda: r.set(self.store.cache_key(key), encode(version, value), px=ttl_ms, nx=True),
            actor=self.name,
        )
        if done:
            events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl_ms)


class WriteThroughClient(Client):
    """Writes commit the row, then set the entry, then are acknowledged; fills and sets alike
    never replace a newer cached version with an older one."""

    def __init__(self, ctx: Any, name: str, store: Store, *, ttl_ms: int):
        super().__init__(ctx, name, store, ttl_ms=ttl_ms, policy="update")

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        r = self.store.redis()
        done = self.ctx.cmd(
            self.store.cache_node(),
            f"EVAL set-if-newer {key} v{version} PX {ttl_ms}",
            lambda: r.eval(SET_IF_NEWER, 1, self.store.cache_key(key), version, encode(version, value), ttl_ms),
            actor=self.name,
        )
        events.entry(self.ctx, key, "set" if done else "refused", version, by=self.name, ttl_ms=ttl_ms)


class Flusher:
    """Takes the dirty keys in batches and writes their cached entries to the items table."""

    def __init__(self, ctx: Any, store: Store, *, batch: int, ttl_ms: int):
        self.ctx, self.store, self.batch, self.ttl_ms = ctx, store, batch, ttl_ms
        self.conn = store.db()
        self.flushed: list[dict] = []

    def dirty(self) -> list[str]:
        r = self.store.redis()
        names = self.ctx.cmd(
            self.store.cache_node(), "SMEMBERS dirty", lambda: r.smembers(dirty_key(self.store)), actor="flusher"
        )
        return sorted(names)

    def flush(self) -> int:
        """Every dirty key written to the table; returns how many rows it wrote."""
        r = self.store.redis()
        prefix = self.store.cache_key("")
        written = 0
        while True:
            taken = self.ctx.cmd(
                self.store.cache_node(),
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
                self.store.cache_node(),
                f"EVAL mark-clean × {len(names)} PX {self.ttl_ms}",
                lambda names=names, flushed=flushed: r.eval(MARK_CLEAN, len(names), *names, *flushed, self.ttl_ms),
                actor="flusher",
            )

    def close(self) -> None:
        self.conn.close()


def run_writes(ctx: Any, mode: str) -> dict:
    """The shared schedule; `mode` is "behind" or "through"."""
    p = ctx.params
    store = Store(ctx.nodes)
    node = store.cache_node()
    keys = store.create(p["keys"], random.Random(ctx.seed))
    without_persistence(ctx, store)
    kind = WriteBehindClient if mode == "behind" else WriteThroughClient
    clients = [kind(ctx, f"c{i}", store, ttl_ms=p["ttl_ms"]) for i in range(1, p["clients"] + 1)]
    rngs = {c.name: random.Random(f"{ctx.seed}:{c.name}:ops") for c in clients}
    zipfs = {c.name: Zipf(keys, p["zipf"], rngs[c.name]) for c in clients}
    flusher = Flusher(ctx, store, batch=p["batch"], ttl_ms=p["ttl_ms"]) if mode == "behind" else None
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
        ctx.fault("kill", node)
        ctx.step()
        ctx.fault("restart", node)
        without_persistence(ctx, store)
        if flusher:
            ctx.emit("phase", actor="flusher", label="the flusher runs again", data={"phase": "flush"})
            flusher.flush()
        ctx.step()

        written = sorted({op["value"]["key"] for op in ctx.history.completed("write") if op["type"] == "ok"})
        ctx.emit("phase", actor="clients", label="every key written is read again", data={"phase": "read-back"})
        for key in written:
            clients[0].read(key)
        return {
            "mode": mode,
            "redis_node": None,
            "written": written,
            "dirty_at_kill": dirty,
            "flushed": flusher.flushed if flusher else [],
        }
    finally:
        for c in clients:
            c.close()
        if flusher:
            flusher.close()


def write_behind(ctx: Any) -> dict:
    return run_writes(ctx, "behind")


def write_through(ctx: Any) -> dict:
    return run_writes(ctx, "through")
