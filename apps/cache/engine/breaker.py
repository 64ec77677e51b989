"""A circuit breaker in front of a Redis cache node, and the cache-node-down scenario. Plain Python.

The breaker is the application's, shared by all its client threads, one per cache node:

    closed     commands go to Redis; `failures` failures in a row open it
    open       nothing goes to Redis (reads go to the database) until `cool_down_s` has passed
    half-open  one caller, the probe, goes to Redis: success closes it, failure opens it again

A write whose invalidation cannot reach Redis (the breaker open, or the DEL failing) has committed
its row, so the cache may still hold the older value (after a pause, or a restart that kept its
data). The key is kept as pending, a failed DEL opens the breaker at once, and the probe deletes
every pending key before the breaker closes: the cache is trusted again only once it holds nothing
older than the table.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from apps.runs.engine_api import NodeDown, describe_error

from . import events
from .aside import run_round, settle
from .clients import Client
from .store import Store, decode, encode
from .workload import Zipf

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
# What a cache node that is down, paused or still loading its data answers with.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
# Commands to a node that stopped answering give up after this long: the breaker, not the client's
# patience, decides when the cache is abandoned.
COMMAND_TIMEOUT_S = 0.25


class CircuitBreaker:
    def __init__(self, ctx: Any, node: str, *, failures: int, cool_down_s: float):
        self.ctx, self.node = ctx, node
        self.threshold, self.cool_down_s = failures, cool_down_s
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.transitions: list[dict] = []
        # key -> the write that left it pending, so a key pending again during a probe's deletes
        # stays pending.
        self.pending: dict[str, int] = {}
        self._writes = 0
        self._lock = threading.Lock()

    def _move(self, state: str, reason: str) -> None:
        """Called with the lock held. The protocol's timers run on the run's active clock."""
        was, self.state = self.state, state
        if state == OPEN:
            self.opened_at = self.ctx.active_clock
        change = {"from": was, "to": state, "reason": reason, "at_s": round(self.ctx.clock / 1000.0, 3)}
        self.transitions.append(change)
        events.breaker(self.ctx, self.node, state, was=was, reason=reason, failures=self.failures)

    def admit(self) -> str | None:
        """How the caller may use the cache now: "closed", "probe" (it is half-open's one probe)
        or None (go to the database)."""
        with self._lock:
            if self.state == CLOSED:
                return CLOSED
            if self.state == OPEN and self.ctx.active_clock - self.opened_at >= self.cool_down_s:
                self._move(HALF_OPEN, f"{self.cool_down_s * 1000:.0f} ms cool-down over: one probe")
                return "probe"
            return None

    def failed(self, error: str) -> None:
        with self._lock:
            self.failures += 1
            if self.state == HALF_OPEN:
                self._move(OPEN, f"the probe failed: {error}")
            elif self.state == CLOSED and self.failures >= self.threshold:
                self._move(OPEN, f"{self.failures} failures in a row: {error}")

    def succeeded(self) -> None:
        with self._lock:
            if self.state == CLOSED:
                self.failures = 0

    def defer(self, key: str, error: str | None = None) -> None:
        """The invalidation of `key` did not reach Redis: the probe deletes it later. A closed
        breaker opens now, since the cache may hold a value older than the row."""
        with self._lock:
            self._writes += 1
            self.pending[key] = self._writes
            if self.state == CLOSED:
                self.failures += 1
                self._move(OPEN, f"the invalidation of {key} failed: {error}")

    def pending_now(self) -> dict[str, int]:
        with self._lock:
            return dict(self.pending)

    def close_if_clean(self, deleted: dict[str, int]) -> bool:
        """Forgets the pending keys the probe deleted; closes when none is left."""
        with self._lock:
            for key, mark in deleted.items():
                if self.pending.get(key) == mark:
                    del self.pending[key]
            if self.pending:
                return False
            self.failures = 0
            self._move(CLOSED, "the probe succeeded: the cache is used again")
            return True


class GuardedCache:
    """The cache commands of the clients, through the breaker, on a Redis client of their own
    that fails fast (no retries: the breaker is the retry policy)."""

    def __init__(self, ctx: Any, store: Store, breaker: CircuitBreaker | None, node: str | None = None):
        self.ctx, self.store, self.breaker = ctx, store, breaker
        self.node = store.cache_node(node)
        self.redis = redis.Redis.from_url(
            ctx.nodes.redis_address(self.node),
            socket_timeout=COMMAND_TIMEOUT_S,
            socket_connect_timeout=COMMAND_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def call(self, actor: str, command: str, fn: Any) -> tuple[bool, Any]:
        """(True, the reply), or (False, None) when the cache was not used or did not answer.
        With no breaker the error reaches the caller."""
        if self.breaker is None:
            return True, self.ctx.cmd(self.node, command, fn, actor=actor)
        mode = self.breaker.admit()
        if mode is None:
            return False, None
        try:
            if mode == "probe":
                self._clear_pending(actor)
            reply = self.ctx.cmd(self.node, command, fn, actor=actor)
        except UNREACHABLE as exc:
            self.breaker.failed(describe_error(exc))
            return False, None
        self.breaker.succeeded()
        return True, reply

    def _clear_pending(self, actor: str) -> None:
        """The probe: a PING, then the deletes of every pending key, then the breaker closes."""
        self.ctx.cmd(self.node, "PING", self.redis.ping, actor=actor)
        while True:
            pending = self.breaker.pending_now()
            if pending:
                names = [self.store.cache_key(k) for k in sorted(pending)]
                self.ctx.cmd(
                    self.node,
                    f"DEL {len(names)} keys written while the breaker was open",
                    lambda names=names: self.redis.delete(*names),
                    actor=actor,
                )
            if self.breaker.close_if_clean(pending):
                return

    def close(self) -> None:
        self.redis.close()


class BreakerClient(Client):
    """A cache-aside client (delete on write) whose cache commands go through the breaker: when
    the cache cannot be used, a read is served by the database, a write's invalidation waits."""

    def __init__(self, ctx: Any, name: str, store: Store, cache: GuardedCache, *, ttl_ms: int):
        super().__init__(ctx, name, store, ttl_ms=ttl_ms)
        self.cache = cache
        self.errors = 0

    def get(self, key: str) -> tuple[int, str] | None:
        name = self.store.cache_key(key)
        used, entry = self.cache.call(self.name, f"GET {key}", lambda: self.cache.redis.get(name))
        return decode(entry) if used else None

    def fill(self, key: str, version: int, value: str, ttl_ms: int | None = None) -> None:
        ttl_ms = ttl_ms or self.ttl_ms
        name = self.store.cache_key(key)
        used, _ = self.cache.call(
            self.name,
            f"SET {key} v{version} PX {ttl_ms}",
            lambda: self.cache.redis.set(name, encode(version, value), px=ttl_ms),
        )
        if used:
            events.entry(self.ctx, key, "set", version, by=self.name, ttl_ms=ttl_ms)

    def invalidate(self, key: str) -> None:
        name = self.store.cache_key(key)
        used, _ = self.cache.call(self.name, f"DEL {key}", lambda: self.cache.redis.delete(name))
        if used:
            events.entry(self.ctx, key, "delete", None, by=self.name)
        else:
            self.cache.breaker.defer(key, "the cache is not reachable")

    def read(self, key: str) -> int | None:
        """A cache-aside read: served by the cache or the database; with no breaker an unreachable
        cache is the client's error, recorded as the read failing."""
        op = self.ctx.history.invoke(self.name, "read", {"key": key})
        try:
            version, source = self.serve(key)
        except UNREACHABLE as exc:
            self.errors += 1
            self.ctx.history.fail(op, {"key": key}, error=describe_error(exc))
            events.read(self.ctx, self.name, key, None, "error", error=describe_error(exc))
            return None
        self.ctx.history.ok(op, {"key": key, "version": version, "from": source})
        events.read(self.ctx, self.name, key, version, source)
        return version

    def write(self, key: str) -> int | None:
        op = self.ctx.history.invoke(self.name, "write", {"key": key})
        version, _ = self.commit(key)
        try:
            self.invalidate(key)
        except UNREACHABLE as exc:
            # The row is committed but the client was told of an error: the outcome it knows is unknown.
            self.errors += 1
            self.ctx.history.info(op, error=describe_error(exc))
            return None
        self.ctx.history.ok(op, {"key": key, "version": version})
        return version


def without_persistence(ctx: Any, cache: GuardedCache) -> None:
    """A cache node keeps its entries in memory only, as most do: restarted, it comes back cold
    (the dedicated node starts with an append-only file)."""
    ctx.cmd(
        cache.node, "CONFIG SET appendonly no", lambda: cache.redis.config_set("appendonly", "no"), actor="operator"
    )


def restarts_come_back_cold(ctx: Any, caches: dict[str, GuardedCache]) -> None:
    """Every restart of a cache node, the schedule's or a button's, goes through here: the node
    starts again with its append-only file on, which would bring its entries back at the next
    kill, so its persistence is turned off before any client uses it; and its clients drop the
    connections of the process that died."""

    def node_events_only(kind: str, **fields: Any) -> Any:
        # The context records the fault itself, crediting whoever pressed it.
        return None if kind == "fault" else ctx.emit(kind, **fields)

    def restart(target: str, **options: Any) -> dict:
        cache = caches.get(target)
        if cache is None:
            raise ValueError(f"{target} is not a cache node of this run")
        ctx.nodes.fault("restart", target, emit=node_events_only, **options)
        cache.redis.connection_pool.disconnect()
        without_persistence(ctx, cache)
        return {"node": target, "persistence": "off"}

    ctx.on_fault("restart", restart)


def wait_out_cool_down(ctx: Any, breaker: CircuitBreaker) -> None:
    if breaker.state == OPEN:
        ctx.cancelled.wait(max(0.0, breaker.cool_down_s - (ctx.active_clock - breaker.opened_at)) + 0.01)


def scheduled_fault(ctx: Any, kind: str, node: str) -> None:
    """The schedule's fault, unless a fault button already put the node in that state."""
    try:
        ctx.fault(kind, node)
    except NodeDown as exc:
        ctx.emit("log", actor="operator", label=f"{kind} {node} skipped: {exc}")


def ensure_up(ctx: Any, cache: GuardedCache) -> None:
    """The run ends with its cache node up, whatever the fault buttons left it in, so that the
    checkers can read it."""
    try:
        cache.redis.ping()
        return
    except UNREACHABLE:
        pass
    try:
        ctx.fault("resume", cache.node)
        cache.redis.ping()
    except (NodeDown, *UNREACHABLE):
        ctx.fault("restart", cache.node)


def trust_again(ctx: Any, cache: GuardedCache) -> None:
    """Before the checkers read the node: a breaker a fault left open is probed once its
    cool-down is over, so every key whose invalidation waited is deleted and the cache the run
    ends with holds nothing older than the table."""
    breaker = cache.breaker
    if breaker is None or (breaker.state == CLOSED and not breaker.pending_now()):
        return
    ensure_up(ctx, cache)
    wait_out_cool_down(ctx, breaker)
    cache.call("operator", "PING", cache.redis.ping)


def cache_node_down(ctx: Any) -> dict:
    p = ctx.params
    store = Store(ctx.nodes)
    node = store.cache_node()
    keys = store.create(p["keys"], random.Random(ctx.seed))
    breaker = CircuitBreaker(ctx, node, failures=p["failures"], cool_down_s=p["cool_down_ms"] / 1000.0)
    cache = GuardedCache(ctx, store, breaker if p["breaker"] else None)
    restarts_come_back_cold(ctx, {node: cache})
    without_persistence(ctx, cache)
    clients = [BreakerClient(ctx, f"c{i}", store, cache, ttl_ms=p["ttl_ms"]) for i in range(1, p["clients"] + 1)]
    rngs = {c.name: random.Random(f"{ctx.seed}:{c.name}:ops") for c in clients}
    zipfs = {c.name: Zipf(keys, p["zipf"], rngs[c.name]) for c in clients}
    hit_ratios: list[dict] = []
    last = {"hits": 0, "reads": 0, "db": 0, "t": ctx.clock}

    def chart(step: int) -> None:
        hits = sum(c.hits for c in clients)
        reads = sum(c.hits + c.misses for c in clients)
        db = sum(c.db_reads for c in clients)
        # Per step, not since the start: the drop to nothing and the warming after the restart show.
        if reads > last["reads"]:
            ratio = round((hits - last["hits"]) / (reads - last["reads"]), 3)
            events.metric(ctx, "hit_ratio", ratio, breaker=breaker.state)
            hit_ratios.append({"step": step, "hit_ratio": ratio, "breaker": breaker.state})
        elapsed = max((ctx.clock - last["t"]) / 1000.0, 1e-3)
        events.metric(ctx, "db_reads_per_s", round((db - last["db"]) / elapsed, 1))
        last.update(hits=hits, reads=reads, db=db, t=ctx.clock)

    ctx.emit("phase", actor="clients", label="clients read and write through the breaker", data={"phase": "workload"})
    try:
        for step in range(1, p["steps"] + 1):
            run_round(ctx, clients, zipfs, rngs)
            chart(step)
            if step == p["kill_at"]:
                ctx.emit("phase", actor="operator", label=f"{node} SIGKILLed", data={"phase": "outage"})
                scheduled_fault(ctx, "kill", node)
            elif step == p["restart_at"]:
                scheduled_fault(ctx, "restart", node)
                ctx.emit("phase", actor="operator", label=f"{node} back, empty", data={"phase": "recovery"})
                # The clients' next round waits for the cool-down to end, however fast the rounds
                # run: its first cache command is then the probe, and it finds the node back.
                wait_out_cool_down(ctx, breaker)
            ctx.step()
        ensure_up(ctx, cache)
        # Whatever a fault button left open is probed by the last reads, once its cool-down is over.
        wait_out_cool_down(ctx, breaker)
        settle(ctx)
        for key in keys[: min(len(keys), 10)]:
            clients[0].read(key)
        return {
            "redis_node": None,
            "hits": sum(c.hits for c in clients),
            "misses": sum(c.misses for c in clients),
            "db_reads": sum(c.db_reads for c in clients),
            "client_errors": sum(c.errors for c in clients),
            "breaker": breaker.state if p["breaker"] else None,
            "transitions": breaker.transitions,
            "hit_ratios": hit_ratios,
        }
    finally:
        for c in clients:
            c.close()
        cache.close()
