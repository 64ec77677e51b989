"""Redlock: one lease taken on a majority of independent Redis nodes.

A client sets the same random token on every node (SET key token NX PX ttl, each with a short
timeout), and holds the lock if a majority said yes and time is left: the validity is the TTL minus
the time the round took minus an allowance for clock drift. Otherwise it deletes what it set.
Release is the same Lua compare-and-delete as the single lease, on every node.
"""

import os
import time
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from apps.runs.engine_api import cmd

from .lease import RELEASE, lease_state

NODE_TIMEOUT_S = 0.25
DRIFT_FACTOR = 0.01
DRIFT_FLOOR_MS = 2


@dataclass
class Grant:
    token: str | None
    votes: list
    elapsed_ms: float
    validity_ms: float
    acquired_at: float = 0.0
    errors: dict = field(default_factory=dict)

    def remaining_ms(self):
        """What is left of the validity now, by the client's own clock."""
        return self.validity_ms - (time.monotonic() - self.acquired_at) * 1000.0


def node_client(url):
    """A client for one Redlock node: short timeouts and no retries, so a dead node costs one quick
    failure instead of a wait."""
    return redis.Redis.from_url(
        url,
        socket_timeout=NODE_TIMEOUT_S,
        socket_connect_timeout=NODE_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


class Redlock:
    def __init__(self, nodes, key, ttl_ms, emit=None, *, holder=None, clock=None, holders=None):
        """`nodes`: {name: redis client}, the independent masters."""
        if int(ttl_ms) < 1:
            raise ValueError("a lease's ttl_ms must be at least 1")
        self.nodes = dict(nodes)
        self.key = key
        self.ttl_ms = int(ttl_ms)
        self.emit = emit
        self.holder = holder
        self.clock = clock or (lambda: round(time.monotonic() * 1000.0, 2))
        self.holders = holders if holders is not None else {}
        self.quorum = len(self.nodes) // 2 + 1
        self._release = {name: client.register_script(RELEASE) for name, client in self.nodes.items()}

    def acquire(self):
        """One round over every node; a Grant whose token is None when it was refused."""
        token = os.urandom(16).hex()
        began = time.monotonic()
        votes, errors = [], {}
        for name, client in self.nodes.items():
            text = f"SET {self.key} {token} NX PX {self.ttl_ms}"
            try:
                ok = self._call(name, text, client.set, self.key, token, nx=True, px=self.ttl_ms)
            except RedisError as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            if ok:
                votes.append(name)
                self._lease_event(name, self.holder, token, self.ttl_ms)
        elapsed = (time.monotonic() - began) * 1000.0
        drift = self.ttl_ms * DRIFT_FACTOR + DRIFT_FLOOR_MS
        validity = self.ttl_ms - elapsed - drift
        granted = len(votes) >= self.quorum and validity > 0
        grant = Grant(
            token if granted else None, votes, round(elapsed, 3), round(validity, 3), time.monotonic(), errors
        )
        if granted:
            self.holders[token] = self.holder
        if self.emit:
            verdict = "holds the lock" if granted else "is refused"
            self.emit(
                "log",
                actor=self.holder or "",
                label=f"{self.holder} {verdict}: {len(votes)} of {len(self.nodes)} nodes (quorum {self.quorum}) in "
                f"{elapsed:.1f} ms; validity {self.ttl_ms} - {elapsed:.1f} - {drift:.1f} = {validity:.1f} ms",
                data={
                    "type": "redlock",
                    "votes": votes,
                    "quorum": self.quorum,
                    "elapsed_ms": grant.elapsed_ms,
                    "validity_ms": grant.validity_ms,
                    "granted": granted,
                    "errors": errors,
                },
            )
        if not granted:
            self._release_all(token, votes)
        return grant

    def release(self, grant):
        """Compare-and-delete on every node; the names of the nodes that still had our token."""
        if grant.token is None:
            return []
        return self._release_all(grant.token, list(self.nodes))

    def observe(self, name):
        """Reads one node's key (GET + PTTL); a `lease` event with what it says."""
        client = self.nodes[name]
        try:
            pipe = client.pipeline(transaction=False)
            pipe.get(self.key)
            pipe.pttl(self.key)
            value, pttl = self._call(name, f"GET {self.key}; PTTL {self.key}", pipe.execute)
        except RedisError:
            return None
        holder = self.holders.get(value) if value else None
        self._lease_event(name, holder, value, int(pttl) if value and pttl and pttl > 0 else None)
        return value

    def _release_all(self, token, names):
        released = []
        for name in names:
            try:
                deleted = self._call(
                    name,
                    f"EVAL <compare-and-delete> 1 {self.key} {token}",
                    self._release[name],
                    keys=[self.key],
                    args=[token],
                )
            except RedisError:
                continue
            if deleted:
                released.append(name)
                self._lease_event(name, None, None, None)
        return released

    def _call(self, node, text, fn, *args, **kwargs):
        return cmd(self.emit, self.holder or "", node, text, lambda: fn(*args, **kwargs))

    def _lease_event(self, node, holder, token, ttl_ms):
        if not self.emit:
            return
        label = f"{self.key}: free" if holder is None and token is None else f"{self.key}: {holder} holds it here"
        lease_state(self.emit, node, self.key, label, holder, token, ttl_ms, self.clock())
