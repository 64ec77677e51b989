"""Leases as Facebook's memcache describes them ("Scaling Memcache at Facebook", 2013), built in
Redis Lua so each decision is one atomic step on the server. Plain Python.

- A miss hands the reader a lease token: the right to fill that key, and no one else's.
- A delete invalidates the outstanding token: a reader that read the row before a write cannot
  put its old value back afterwards.
- A set with a token that is not the key's current one is refused.
- At most one token per key per interval (`lease_ms`): while a token is out (until its holder
  sets or is refused, or the interval runs out), other readers that miss are told to wait and
  retry, so a missing key costs one database read, not one per reader (the herd).

    leases = Leases(ctx, store, lease_ms=500)
    got = leases.get("c1", key)          # Lease("hit", entry=...) | Lease("token", token=7) | Lease("wait", ...)
    leases.set("c1", key, got.token, version, value, ttl_ms)   # True when the fill was accepted
    leases.delete("w", key)              # the entry deleted and any token out on it invalidated

`LeaseClient` is a cache-aside Client whose reads and writes go through the leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import events
from .clients import Client
from .store import Store, decode, encode

# KEYS: entry, lease, token counter. ARGV: lease_ms.
GET = """
local entry = redis.call('GET', KEYS[1])
if entry then return {'hit', entry} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'wait', redis.call('PTTL', KEYS[2])} end
local token = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], token, 'PX', ARGV[1])
return {'token', token}
"""
# KEYS: entry, lease. ARGV: token, entry, ttl_ms. A holder whose token was invalidated ends its
# lease when its set is refused: it has come back, and the next miss may have a token for the new
# row. Any other token (a forged one, one whose interval ran out) is refused and changes nothing.
SET = """
local lease = redis.call('GET', KEYS[2])
if lease == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
if lease == 'invalidated:' .. ARGV[1] then redis.call('DEL', KEYS[2]) end
return 0
"""
# KEYS: entry, lease. An outstanding token is marked rather than deleted: it can no longer match,
# and until its holder comes back (or its interval runs out) other readers still wait, so the
# holder's late set and a new reader's fill never race. Answers the token invalidated, or 0.
DELETE = """
redis.call('DEL', KEYS[1])
local token = tonumber(redis.call('GET', KEYS[2]))
if token then
  redis.call('SET', KEYS[2], 'invalidated:' .. token, 'KEEPTTL')
  return token
end
return 0
"""


@dataclass(frozen=True)
class Lease:
    """What a lease-aware GET answered: `hit` with the cached entry, `token` with the reader's
    lease token, or `wait` with the milliseconds left on someone else's lease."""

    kind: str
    entry: str | None = None
    token: int | None = None
    wait_ms: int | None = None


class Leases:
    """The leases of one store's cache (its Redis node), every command recorded through ctx.cmd
    under the actor that sends it. Thread-safe: clients on threads share one."""

    def __init__(self, ctx: Any, store: Store, *, lease_ms: int):
        self.ctx, self.store, self.lease_ms = ctx, store, lease_ms
        r = store.redis()
        self._get, self._set, self._delete = r.register_script(GET), r.register_script(SET), r.register_script(DELETE)

    @classmethod
    def for_store(cls, ctx: Any, store: Store, *, lease_ms: int) -> Leases:
        """The same as Leases(ctx, store, lease_ms=...)."""
        return cls(ctx, store, lease_ms=lease_ms)

    def _keys(self, key: str) -> list[str]:
        # Lease keys live beside the cache, not in it: the checkers read every `cache` key as an entry.
        return [self.store.cache_key(key), self.store.nodes.key("lease", key)]

    def get(self, actor: str, key: str) -> Lease:
        """GET, and on a miss a lease token or the word to wait."""
        keys = [*self._keys(key), self.store.nodes.key("lease-tokens")]
        kind, answer = self.ctx.cmd(
            self.store.cache_node(),
            f"EVALSHA lease-get {key}",
            lambda: self._get(keys=keys, args=[self.lease_ms]),
            actor=actor,
        )
        if kind == "hit":
            return Lease("hit", entry=answer)
        if kind == "token":
            events.lease(self.ctx, key, actor, int(answer), "granted")
            return Lease("token", token=int(answer))
        return Lease("wait", wait_ms=max(int(answer), 0))

    def set(self, actor: str, key: str, token: int, version: int, value: str, ttl_ms: int) -> bool:
        """Fills the key with `token`; False when the token is no longer the key's (refused)."""
        accepted = self.ctx.cmd(
            self.store.cache_node(),
            f"EVALSHA lease-set {key} token {token} v{version} PX {ttl_ms}",
            lambda: self._set(keys=self._keys(key), args=[token, encode(version, value), ttl_ms]),
            actor=actor,
        )
        events.lease(self.ctx, key, actor, token, "used" if accepted else "refused")
        if accepted:
            events.entry(self.ctx, key, "set", version, by=actor, ttl_ms=ttl_ms, token=token)
        else:
            events.entry(self.ctx, key, "refused", version, by=actor, token=token)
        return bool(accepted)

    def delete(self, actor: str, key: str) -> int | None:
        """Deletes the entry and invalidates a token out on it; returns that token, or None."""
        revoked = self.ctx.cmd(
            self.store.cache_node(),
            f"EVALSHA lease-delete {key}",
            lambda: self._delete(keys=self._keys(key)),
            actor=actor,
        )
        events.entry(self.ctx, key, "delete", None, by=actor)
        if not revoked:
            return None
        events.lease(self.ctx, key, actor, int(revoked), "invalidated")
        return int(revoked)


FIRST_RETRY_MS = 2  # a waiting reader's first retry; each next one waits twice as long, up to retry_ms


class LeaseClient(Client):
    """A cache-aside client that fills only with a lease token and deletes through the leases.

    A hit is a plain GET; a miss asks for a lease (see _read_with_lease)."""

    def __init__(self, ctx: Any, name: str, store: Store, leases: Leases, *, ttl_ms: int, retry_ms: int = 50):
        super().__init__(ctx, name, store, ttl_ms=ttl_ms, policy="delete")
        self.leases, self.retry_ms = leases, retry_ms
        self.waits = self.refused = 0

    def lease_get(self, key: str) -> Lease:
        return self.leases.get(self.name, key)

    def lease_fill(self, key: str, token: int, version: int, value: str) -> bool:
        accepted = self.leases.set(self.name, key, token, version, value, self.ttl_ms)
        self.refused += not accepted
        return accepted

    def invalidate(self, key: str) -> None:
        self.leases.delete(self.name, key)

    def read(self, key: str) -> int:
        op = self.ctx.history.invoke(self.name, "read", {"key": key})
        waits = 0
        # A hit needs no lease: one GET, as plain cache-aside; only a miss runs the lease script.
        cached = self.get(key)
        if cached is not None:
            self.hits += 1
            version, source = cached[0], "cache"
        else:
            version, source, waits = self._read_with_lease(key)
        self.ctx.history.ok(op, {"key": key, "version": version, "from": source, "waits": waits})
        events.read(self.ctx, self.name, key, version, source, waits=waits)
        return version

    def _read_with_lease(self, key: str) -> tuple[int, str, int]:
        """A miss: a lease token (read the row, fill with it) or the word to wait. A waiting reader
        retries soon (a holder fills in a few milliseconds), then less and less often, for a little
        longer than one lease interval; if it still has neither a value nor a token (a holder that
        never set), it reads the row without filling the cache rather than failing the read."""
        waits, waited, pause = 0, 0.0, FIRST_RETRY_MS
        while waited <= self.leases.lease_ms + 2 * self.retry_ms:
            got = self.lease_get(key)
            if got.kind == "hit":
                self.hits += 1
                return decode(got.entry)[0], "cache", waits
            if got.kind == "token":
                self.misses += 1
                version, value = self.load(key)
                self.lease_fill(key, got.token, version, value)
                return version, "db", waits
            waits += 1
            self.waits += 1  # counted as it happens: a schedule may wait for readers to be waiting
            wait = min(pause, self.retry_ms, max(got.wait_ms, 1))
            self.ctx.cancelled.wait(wait / 1000.0)
            waited += wait
            pause *= 2
        self.misses += 1
        return self.load(key)[0], "db", waits
