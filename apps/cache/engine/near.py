"""Near caches: each client keeps the entries it reads in its own process, in front of Redis, and
Redis tells it when one changes. Plain Python.

Every client has two connections of its own (RESP2, as Redis 7.0 speaks to them):
- the data connection, with `CLIENT TRACKING on REDIRECT <id>`: Redis remembers every key this
  connection reads, and when one is written, deleted or expires, it sends the key's name, once, to
  the connection <id>;
- that invalidation connection, `SUBSCRIBE __redis__:invalidate`, where the names arrive.

A read serves the near cache when it holds the key; otherwise it asks Redis (`GET`, which also
makes Redis track the key for this client) and keeps what Redis had. A read that misses in Redis as
well goes to the row and fills Redis, but keeps nothing near: its own `SET` is a write of the key,
which ends the tracking of it, so only a value a `GET` returned is one Redis will report changes of.

The client applies its invalidations when a round's writes are done: it sends `PING` on the
invalidation connection and reads until the `pong`, which Redis queues behind every invalidation of
the writes before it. Every write after a `GET` was tracked is then dropped before the next round's
reads; within a round the reads come before the writes (sharding.rounds). The time an invalidation
takes to arrive is a near cache's own stale window: a client that read its near cache in it would
be served the old value, which is why the rounds keep reads and writes apart.

When the invalidation connection has been dropped, the invalidations sent meanwhile are lost: Redis
forgets a key's trackers as it notifies them. The client finds out at its next catch-up, reconnects
and turns tracking on towards the new connection; with `flush_on_reconnect` it empties its near
cache too, since it cannot know which of its entries changed while it was deaf.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import redis

from . import events
from .clients import Client
from .sharding import Workload, rounds
from .store import Store, decode

CHANNEL = "__redis__:invalidate"


class NearClient(Client):
    def __init__(self, ctx: Any, name: str, store: Store, *, ttl_ms: int, flush_on_reconnect: bool):
        super().__init__(ctx, name, store, ttl_ms=ttl_ms)
        self.flush_on_reconnect = flush_on_reconnect
        self.address = ctx.nodes.redis_address(store.redis_node)
        self.node = store.cache_node()
        # key -> (version, value); read and changed only on the client's own thread, or on the
        # run's between rounds.
        self.near: dict[str, tuple[int, str]] = {}
        self.near_hits = 0
        self.pings = itertools.count(1)
        self.data = redis.Redis.from_url(
            self.address, protocol=2, single_connection_client=True, socket_timeout=5, decode_responses=True
        )
        self.invalidations: redis.Connection | None = None
        self.subscribe()

    # The invalidation connection ---------------------------------------------------------------
    def _send(self, conn: redis.Connection, *args: Any) -> Any:
        conn.send_command(*args)
        return conn.read_response()

    def subscribe(self) -> None:
        """A new invalidation connection, and tracking on the data connection redirected to it."""
        url = redis.connection.parse_url(self.address)
        conn = redis.Connection(
            host=url.get("host", "127.0.0.1"),
            port=url.get("port", 6379),
            db=url.get("db", 0),
            password=url.get("password"),
            username=url.get("username"),
            protocol=2,
            socket_timeout=5,
            decode_responses=True,
        )
        conn.connect()
        self.invalidation_id = self.ctx.cmd(
            self.node, "CLIENT ID", lambda: self._send(conn, "CLIENT", "ID"), actor=self.name
        )
        self.ctx.cmd(self.node, f"SUBSCRIBE {CHANNEL}", lambda: self._send(conn, "SUBSCRIBE", CHANNEL), actor=self.name)
        self.ctx.cmd(
            self.node,
            f"CLIENT TRACKING on REDIRECT {self.invalidation_id}",
            lambda: self.data.execute_command("CLIENT", "TRACKING", "on", "REDIRECT", self.invalidation_id),
            actor=self.name,
        )
        self.invalidations = conn

    def catch_up(self) -> None:
        """Applies every invalidation Redis sent before now; reconnects if the connection was dropped."""
        token = f"{self.name}-{next(self.pings)}"
        conn = self.invalidations
        try:
            self.ctx.cmd(
                self.node,
                f"PING {token}",
                lambda: self._drain(conn, token),
                actor=self.name,
                summary=lambda n: f"pong after {n} invalidations",
            )
        except (redis.ConnectionError, OSError):
            self.reconnect()

    def _drain(self, conn: redis.Connection, token: str) -> int:
        """Sends PING and applies what comes before its pong; returns how many entries it dropped."""
        conn.send_command("PING", token)
        applied = 0
        while True:
            message = conn.read_response()
            if not isinstance(message, list):
                raise redis.ConnectionError("the invalidation connection is no longer subscribed")
            if message[0] == "pong":
                return applied
            if message[0] == "message" and message[1] == CHANNEL:
                applied += self.invalidate_near(message[2])

    def invalidate_near(self, names: list[str] | None) -> int:
        """Drops the near entries Redis named (all of them for a null list: Redis flushed)."""
        prefix = self.store.cache_key("")
        if names is None:
            dropped = list(self.near)
            self.near.clear()
        else:
            dropped = [n[len(prefix) :] for n in names if n.startswith(prefix) and n[len(prefix) :] in self.near]
            for key in dropped:
                del self.near[key]
        for key in dropped:
            events.near(self.ctx, self.name, key, "invalidated")
        return len(dropped)

    def drop(self) -> dict:
        """The fault: the server closes this client's invalidation connection."""
        victim = self.invalidation_id
        r = self.store.redis()
        self.ctx.cmd(
            self.node,
            f"CLIENT KILL ID {victim}",
            lambda: r.execute_command("CLIENT", "KILL", "ID", victim),
            actor="fault",
        )
        events.near(self.ctx, self.name, None, "dropped", connection=victim)
        return {"connection": victim}

    def reconnect(self) -> None:
        old, self.invalidations = self.invalidations, None
        if old is not None:
            old.disconnect()
        self.subscribe()
        if self.flush_on_reconnect:
            flushed = len(self.near)
            self.near.clear()
            events.near(self.ctx, self.name, None, "flushed", entries=flushed)
        else:
            events.near(self.ctx, self.name, None, "reconnected", kept=len(self.near))

    # Reads ------------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[int, str] | None:
        name = self.store.cache_key(key)
        entry = self.ctx.cmd(self.node, f"GET {key}", lambda: self.data.get(name), actor=self.name)
        return decode(entry)

    def read(self, key: str) -> int:
        op = self.ctx.history.invoke(self.name, "read", {"key": key})
        held = self.near.get(key)
        if held is not None:
            self.hits += 1
            self.near_hits += 1
            version, source = held[0], "near"
        else:
            cached = self.get(key)  # Redis now tracks the key for this client
            if cached is not None:
                self.hits += 1
                self.near[key] = cached
                version, source = cached[0], "cache"
            else:
                self.misses += 1
                version, value = self.load(key)
                self.fill(key, version, value)
                source = "db"
        self.ctx.history.ok(op, {"key": key, "version": version, "from": source})
        events.read(self.ctx, self.name, key, version, source)
        return version

    def holds(self) -> list[str]:
        return list(self.near)

    def close(self) -> None:
        super().close()
        if self.invalidations is not None:
            self.invalidations.disconnect()
        self.data.close()


def near_cache(ctx: Any) -> dict:
    p = ctx.params
    store = Store(ctx.nodes)
    keys = store.create(p["keys"], random.Random(ctx.seed))
    clients = [
        NearClient(ctx, f"c{i}", store, ttl_ms=p["ttl_ms"], flush_on_reconnect=p["flush_on_reconnect"])
        for i in range(1, p["clients"] + 1)
    ]
    by_name = {c.name: c for c in clients}

    def drop(target: str, **_options: Any) -> dict:
        if target not in by_name:
            raise ValueError(f"no client {target} in this run (c1 to c{len(clients)})")
        return by_name[target].drop()

    ctx.on_fault("drop-invalidations", drop)
    workload = Workload(ctx, list(by_name), keys)
    schedule: dict[str, Any] = {}

    def catch_up() -> None:
        if schedule.get("stale_key") and "written" not in schedule:
            # In the round of the drop, after its reads: a write of a key c1 holds near, whose
            # invalidation is lost with the connection.
            schedule["written"] = clients[-1].write(schedule["stale_key"])
        for c in clients:
            c.catch_up()
        if "written" in schedule and "read_back" not in schedule:
            # c1 has reconnected: it reads that key again, from its near cache if it kept it.
            schedule["read_back"] = clients[0].read(schedule["stale_key"])
        reads = sum(c.hits + c.misses for c in clients)
        if reads:
            events.metric(ctx, "near_hit_ratio", round(sum(c.near_hits for c in clients) / reads, 3))

    ctx.emit("phase", actor="clients", label="clients read through their near caches", data={"phase": "workload"})
    try:
        drop_at = p["drop_at"]
        before = drop_at - 1 if drop_at else p["steps"]
        rounds(ctx, clients, workload, before, after_round=catch_up)
        if drop_at:
            # c1 makes sure it holds the hottest key near, caught up (a miss fills Redis, and the
            # invalidation its own SET caused drops nothing it keeps; the next GET is kept); then,
            # at the step boundary, as the fault's button does it, the server closes c1's
            # invalidation connection, and the round's end writes that key.
            hot = keys[0]
            for _ in range(3):
                clients[0].catch_up()
                if hot in clients[0].holds():
                    break
                clients[0].read(hot)
            schedule["stale_key"] = hot
            ctx.fault("drop-invalidations", "c1")
            rounds(ctx, clients, workload, p["steps"] - before, after_round=catch_up)
        # The run ends with every client caught up on its invalidations.
        for c in clients:
            c.catch_up()
    finally:
        for c in clients:
            c.close()
    return {
        "near_hits": sum(c.near_hits for c in clients),
        "hits": sum(c.hits for c in clients),
        "misses": sum(c.misses for c in clients),
        "db_reads": sum(c.db_reads for c in clients),
        "dropped_at": p["drop_at"] or None,
        "flush_on_reconnect": p["flush_on_reconnect"],
        **schedule,
        "redis_node": store.redis_node,
    }
