"""A lock lease on one Redis: `SET key token NX PX ttl`, released by a Lua compare-and-delete so a
client never deletes a lease that expired and went to someone else.

    lease = Lease(redis.Redis(...), "lock:counter", ttl_ms=500)
    token = lease.acquire(timeout=2.0)        # None when it did not get it in time
    ...                                       # the critical section, within ttl_ms
    lease.release()                           # False when the lease had expired meanwhile

With `fencing_key`, the token is a number from a counter that only grows (INCR in the same script
as the SET, so only a successful acquire takes one): the storage can then refuse a holder whose
lease expired under it. Without `emit` nothing else is done per call, so it costs what redis-py's
own Lock costs; with it, every command is a `cmd` event and the lease's state a `lease` event.
"""

import os
import time
from typing import Any

from apps.runs.engine_api import Emit, cmd

RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# KEYS[1] the lease, KEYS[2] the fencing counter; ARGV[1] the ttl in ms. Returns the token or false.
ACQUIRE_FENCED = """
if redis.call('exists', KEYS[1]) == 1 then
    return false
end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token, 'px', ARGV[1])
return token
"""


class Lease:
    def __init__(
        self,
        redis_client,
        key,
        ttl_ms,
        emit=None,
        *,
        holder=None,
        node="redis",
        clock=None,
        fencing_key=None,
        retry_s=0.01,
        holders=None,
    ):
        if int(ttl_ms) < 1:
            raise ValueError("a lease's ttl_ms must be at least 1")
        self.redis = redis_client
        self.key = key
        self.ttl_ms = int(ttl_ms)
        self.emit = emit
        self.holder = holder
        self.node = node
        self.clock = clock or (lambda: round(time.monotonic() * 1000.0, 2))
        self.fencing_key = fencing_key
        self.retry_s = retry_s
        # token -> client, shared by the leases of one run, so a read can say who holds the key.
        self.holders = holders if holders is not None else {}
        self.token = None
        self._release = redis_client.register_script(RELEASE)
        self._acquire_fenced = redis_client.register_script(ACQUIRE_FENCED) if fencing_key else None

    # One attempt ------------------------------------------------------------------------------
    def try_acquire(self):
        """One attempt; the token, or None when someone else holds the lease."""
        if self._acquire_fenced is not None:
            token = self._call(
                f"EVAL <acquire-fenced> 2 {self.key} {self.fencing_key} {self.ttl_ms}",
                self._acquire_fenced,
                keys=[self.key, self.fencing_key],
                args=[self.ttl_ms],
            )
            token = int(token) if token else None
        else:
            candidate = os.urandom(16).hex()
            done = self._call(
                f"SET {self.key} {candidate} NX PX {self.ttl_ms}",
                self.redis.set,
                self.key,
                candidate,
                nx=True,
                px=self.ttl_ms,
            )
            token = candidate if done else None
        if token is not None:
            self.token = token
            if self.emit:
                self.holders[str(token)] = self.holder
                self._lease_event(self.holder, token, self.ttl_ms)
        return token

    def acquire(self, blocking=True, timeout=None):
        """The token once held; None if not blocking and taken, or when `timeout` (s) runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            token = self.try_acquire()
            if token is not None or not blocking:
                return token
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(self.retry_s)

    def release(self):
        """Deletes the lease only if it still holds our token; False if it had expired (and maybe
        gone to someone else)."""
        if self.token is None:
            return False
        token, self.token = self.token, None
        deleted = self._call(
            f"EVAL <compare-and-delete> 1 {self.key} {token}", self._release, keys=[self.key], args=[token]
        )
        if self.emit:
            if deleted:
                self._lease_event(None, None, None)
            else:
                self.observe()
        return bool(deleted)

    def observe(self):
        """Reads who holds the lease now and for how long (GET + PTTL); a `lease` event with it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.key)
        pipe.pttl(self.key)
        value, pttl = self._call(f"GET {self.key}; PTTL {self.key}", pipe.execute)
        if value is None:
            holder, token, ttl = None, None, None
        else:
            token = _token(value)
            holder = self.holders.get(str(token))
            ttl = int(pttl) if pttl and pttl > 0 else None
        if self.emit:
            self._lease_event(holder, token, ttl, read_by=self.holder)
        return {"holder": holder, "token": token, "ttl_ms": ttl}

    # Events -----------------------------------------------------------------------------------
    def _call(self, text, fn, *args, **kwargs):
        return cmd(self.emit, self.holder or "", self.node, text, lambda: fn(*args, **kwargs))

    def _lease_event(self, holder, token, ttl_ms, read_by=None):
        if holder is None:
            label = f"{self.key}: free"
        else:
            label = f"{self.key}: {holder} holds it, token {token}, {ttl_ms} ms left"
        lease_state(self.emit, self.node, self.key, label, holder, token, ttl_ms, self.clock(), read_by=read_by)


def lease_state(
    emit: Emit,
    node: str,
    key: str,
    label: str,
    holder: str | None,
    token: Any,
    ttl_ms: int | None,
    at: float,
    read_by: str | None = None,
) -> None:
    """A `lease` state event: who holds `key` on `node` by what it says, and for how long."""
    data = {"type": "lease", "node": node, "key": key, "holder": holder, "token": token, "ttl_ms": ttl_ms, "at": at}
    if read_by:
        data["read_by"] = read_by
    emit("state", actor=node, label=label, data=data)


def _token(value):
    text = value.decode() if isinstance(value, bytes) else str(value)
    return int(text) if text.isdigit() else text
