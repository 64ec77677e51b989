"""Cache-aside's races, scheduled step by step on the real servers so every run shows them, and
their cures: the delayed double delete and leases. Plain Python.

Each race is a fixed schedule of one reader's and one writer's steps (get, load, commit, delete,
fill), not threads left to collide: the interleaving that serves a stale value happens on every
run, and the page can step through it. Other readers then keep reading the raced keys, so what
the checkers judge are real reads served by the cache.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from . import events
from .clients import Client
from .leases import LeaseClient, Leases
from .store import Store, key_name

# Delays of the double delete's second delete, as multiples of the reader's read-plus-set time:
# each on a key of its own. 1 itself is left out: there the second delete and the fill tie, and
# which comes first is a coin flip, not a lesson.
DELAY_MULTIPLES = (0.0, 0.25, 0.5, 0.75, 1.5, 2.0)


def raced_keys(count: int) -> list[str]:
    return [key_name(i) for i in range(1, count + 1)]


def sides(count: int) -> dict[str, list[str]]:
    """update-vs-delete's two key sets, side by side: odd keys update the cache, even keys delete it."""
    keys = raced_keys(count)
    return {"update": keys[0::2], "delete": keys[1::2]}


def delayed_keys(reader_ms: int) -> list[tuple[str, float]]:
    """double-delete's keys with the delay, in ms, of each one's second delete."""
    return [(key_name(i), m * reader_ms) for i, m in enumerate(DELAY_MULTIPLES, start=1)]


def _phase(ctx: Any, name: str, label: str) -> None:
    ctx.emit("phase", actor="clients", label=label, data={"phase": name})


def _read_round(readers: list[Client], keys: list[str]) -> None:
    for reader in readers:
        for key in keys:
            reader.read(key)


def _close(clients: list[Client]) -> None:
    for c in clients:
        c.close()


# stale-set-race ------------------------------------------------------------------------------
def stale_set_race(ctx: Any) -> dict:
    """A reader misses and reads v1; a writer commits v2 and deletes the entry; the reader sets v1.
    Other readers are then served v1 from the cache until its TTL runs out."""
    p = ctx.params
    store = Store(ctx.nodes)
    keys = store.create(p["keys"], random.Random(ctx.seed))
    reader = Client(ctx, "reader", store, ttl_ms=p["ttl_ms"])
    writer = Client(ctx, "writer", store, ttl_ms=p["ttl_ms"])
    others = [Client(ctx, f"c{i}", store, ttl_ms=p["ttl_ms"]) for i in range(1, p["clients"] + 1)]
    try:
        for key in keys:
            _phase(ctx, "race", f"the race on {key}: the reader's fill lands after the writer's delete")
            ctx.step()
            op = ctx.history.invoke(reader.name, "read", {"key": key})
            reader.get(key)  # a miss: the run's cache starts empty
            ctx.step()
            version, value = reader.load(key)
            ctx.step()
            writer.write(key)  # commits v2 and deletes the entry the reader has not set yet
            ctx.step()
            reader.fill(key, version, value)
            ctx.history.ok(op, {"key": key, "version": version, "from": "db"})
            events.read(ctx, reader.name, key, version, "db")
            # The same step: no pause can come between the stale fill and the first reads of it.
            _read_round(others, [key])
        _phase(ctx, "reads", "the other readers keep reading the raced keys")
        for _ in range(p["steps"]):
            ctx.step()
            _read_round(others, keys)
        _phase(ctx, "settle", f"wait one TTL ({p['ttl_ms']} ms): the stale entries expire")
        ctx.step()
        ctx.cancelled.wait(p["ttl_ms"] / 1000.0 + 0.05)
        _read_round(others, keys)
        return {"keys": keys, "races": len(keys)}
    finally:
        _close([reader, writer, *others])


# update-vs-delete ----------------------------------------------------------------------------
def update_vs_delete(ctx: Any) -> dict:
    """Two writers, A and B, on the same keys: A commits, B commits, B writes the cache, A writes
    the cache. Updating the entry leaves A's older version in it; deleting it converges."""
    p = ctx.params
    store = Store(ctx.nodes)
    store.create(p["keys"], random.Random(ctx.seed))
    halves = sides(p["keys"])
    writers = {
        side: (Client(ctx, f"{side}-a", store, ttl_ms=p["ttl_ms"]), Client(ctx, f"{side}-b", store, ttl_ms=p["ttl_ms"]))
        for side in halves
    }
    readers = [Client(ctx, f"r{i}", store, ttl_ms=p["ttl_ms"]) for i in range(1, p["clients"] + 1)]

    def write_cache(client: Client, side: str, key: str, committed: tuple[int, str]) -> None:
        if side == "update":
            client.update_entry(key, *committed)
        else:
            client.invalidate(key)

    try:
        for n in range(1, p["steps"] + 1):
            _phase(ctx, "race", f"round {n}: A commits, B commits, B writes the cache, A writes the cache")
            ops: dict[tuple[str, str], Any] = {}
            commits: dict[tuple[str, str], tuple[int, str]] = {}
            for order in ("a", "b"):
                ctx.step()
                for side, keys in halves.items():
                    client = writers[side][order == "b"]
                    for key in keys:
                        ops[order, key] = ctx.history.invoke(client.name, "write", {"key": key})
                        commits[order, key] = client.commit(key)
            for order in ("b", "a"):
                ctx.step()
                for side, keys in halves.items():
                    client = writers[side][order == "b"]
                    for key in keys:
                        write_cache(client, side, key, commits[order, key])
                        ctx.history.ok(ops[order, key], {"key": key, "version": commits[order, key][0]})
            ctx.step()
            _read_round(readers, [k for keys in halves.values() for k in keys])
        return {"sides": halves, "rounds": p["steps"]}
    finally:
        _close([c for pair in writers.values() for c in pair] + readers)


# double-delete -------------------------------------------------------------------------------
class Timeline:
    """Actions run in the order of their planned times, on one thread, each when its time comes:
    the order is the plan's whatever the machine's load, and the times are real."""

    def __init__(self, ctx: Any):
        self.ctx, self.start, self._plan, self._n = ctx, time.monotonic(), [], 0

    def now_ms(self) -> float:
        return (time.monotonic() - self.start) * 1000.0

    def after(self, ms: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._plan, (self.now_ms() + ms, self._n, action))
        self._n += 1

    def run(self) -> None:
        while self._plan and not self.ctx.cancelled.is_set():
            at, _, action = heapq.heappop(self._plan)
            wait = (at - self.now_ms()) / 1000.0
            if wait > 0:
                self.ctx.cancelled.wait(wait)
            action()


def double_delete(ctx: Any) -> dict:
    """The stale-set race on several keys at once, the writer deleting each entry twice: right
    after its commit and again after a delay, a different delay on each key. The reader, which
    read the row just before the write, sets it `reader_ms` after the writer's first delete."""
    p = ctx.params
    store = Store(ctx.nodes)
    store.create(len(DELAY_MULTIPLES), random.Random(ctx.seed))
    reader = Client(ctx, "reader", store, ttl_ms=p["ttl_ms"])
    writer = Client(ctx, "writer", store, ttl_ms=p["ttl_ms"])
    probe = Client(ctx, "c1", store, ttl_ms=p["ttl_ms"])
    timeline = Timeline(ctx)
    marks: dict[str, dict[str, float]] = {}
    sweep = []

    def probe_after_both(key: str) -> None:
        # Once the fill and the second delete have both happened, another reader reads the key
        # twice: what it is served is what the double delete left.
        if {"fill", "delete2"} <= marks[key].keys():
            timeline.after(1, lambda: probe.read(key))
            timeline.after(p["reader_ms"], lambda: probe.read(key))

    def race(key: str, delay_ms: float) -> None:
        op = ctx.history.invoke(reader.name, "read", {"key": key})
        reader.get(key)  # a miss: the run's cache starts empty
        loaded_at = timeline.now_ms()
        version, value = reader.load(key)
        marks[key] = {"load": loaded_at}
        writer.write(key)  # commit v2, first delete; the writer is answered here
        marks[key]["ack"] = timeline.now_ms()

        def fill() -> None:
            reader.fill(key, version, value)
            ctx.history.ok(op, {"key": key, "version": version, "from": "db"})
            events.read(ctx, reader.name, key, version, "db")
            marks[key]["fill"] = timeline.now_ms()
            probe_after_both(key)

        def delete2() -> None:
            writer.invalidate(key)
            marks[key]["delete2"] = timeline.now_ms()
            probe_after_both(key)

        # Both planned from the same instant, the write's answer: whether the second delete comes
        # before the fill then depends on the delay and the reader's time alone, not on how long
        # the commit took on a busy machine.
        timeline.after(p["reader_ms"], fill)
        timeline.after(delay_ms, delete2)

    try:
        _phase(ctx, "race", f"the reader takes {p['reader_ms']} ms from reading the row to setting it")
        ctx.step()
        for key, delay_ms in delayed_keys(p["reader_ms"]):
            timeline.after(0, lambda k=key, d=delay_ms: race(k, d))
        timeline.run()
        ctx.step()  # a run stopped during the timeline stops here, before its sweep is half told
        for (key, delay_ms), multiple in zip(delayed_keys(p["reader_ms"]), DELAY_MULTIPLES, strict=True):
            m = marks[key]
            # The old value outlived the second delete when the fill came after it: then it stays
            # until the TTL. Otherwise the second delete removed it.
            fill_last = m["fill"] > m["delete2"]
            after_delete2 = p["ttl_ms"] if fill_last else 0
            sweep.append(
                {
                    "key": key,
                    "delay_ms": round(delay_ms, 1),
                    "multiple": multiple,
                    "read_plus_set_ms": round(m["fill"] - m["load"], 1),
                    "cached_after_second_delete_ms": after_delete2,
                    # Between the fill and the second delete the old value is cached all the same.
                    "old_value_cached_ms": p["ttl_ms"] if fill_last else round(m["delete2"] - m["fill"], 1),
                }
            )
            events.metric(ctx, "stale_after_second_delete_ms", after_delete2, x=round(delay_ms, 1), key=key)
        _phase(ctx, "settle", f"wait one TTL ({p['ttl_ms']} ms), then read every key once more")
        ctx.step()
        ctx.cancelled.wait(p["ttl_ms"] / 1000.0 + 0.05)
        _read_round([probe], [k for k, _ in delayed_keys(p["reader_ms"])])
        return {"reader_ms": p["reader_ms"], "sweep": sweep}
    finally:
        _close([reader, writer, probe])


# leases --------------------------------------------------------------------------------------
def leases(ctx: Any) -> dict:
    """stale-set-race's schedule with leases: the reader's miss gets a token, the writer's delete
    invalidates it, the reader's stale set is refused. Then one reader misses and gets a new
    token; the others, missing while it is out, wait and retry until it has filled v2."""
    p = ctx.params
    store = Store(ctx.nodes)
    keys = store.create(p["keys"], random.Random(ctx.seed))
    table = Leases(ctx, store, lease_ms=p["lease_ms"])

    def client(name: str) -> LeaseClient:
        return LeaseClient(ctx, name, store, table, ttl_ms=p["ttl_ms"])

    reader, writer = client("reader"), client("writer")
    others = [client(f"c{i}") for i in range(1, p["clients"] + 1)]
    filler, waiting = others[0], others[1:]
    try:
        for key in keys:
            _phase(ctx, "race", f"the race on {key}, with a lease on every miss")
            ctx.step()
            _lease_read(ctx, reader, key, writer=writer)
            _phase(ctx, "herd", f"{filler.name} misses and gets a new lease; the other readers wait")
            ctx.step()
            _lease_read(ctx, filler, key, waiting=waiting)
        _phase(ctx, "reads", "the readers keep reading the raced keys")
        for _ in range(p["steps"]):
            ctx.step()
            _read_round(others, keys)
        clients = [reader, writer, *others]
        return {"keys": keys, "refused": sum(c.refused for c in clients), "waits": sum(c.waits for c in clients)}
    finally:
        _close([reader, writer, *others])


def _lease_read(
    ctx: Any, client: LeaseClient, key: str, *, writer: LeaseClient | None = None, waiting: tuple | list = ()
) -> None:
    """One read by a lease holder, step by step: the miss and its token, the row, and the fill.
    With `writer`, the writer commits and deletes between the row and the fill (the stale set);
    with `waiting`, those readers miss while the token is out, and the fill comes only once each
    of them has been told to wait."""
    op = ctx.history.invoke(client.name, "read", {"key": key})
    got = client.lease_get(key)
    if got.kind != "token":  # the key is missing: the race's delete, or the run's empty cache
        raise RuntimeError(f"{client.name}'s GET of {key} was answered {got.kind}, not a lease")
    before = {c.name: c.waits for c in waiting}
    herd = Herd(waiting, key)
    # The scheduled interleaving, observed on the server rather than hoped for: every waiting
    # reader has had its miss answered "wait" before the holder goes on (or has finished: a run
    # held paused past the lease's interval lets a waiting reader have a token of its own).
    while not all(c.waits > before[c.name] for c in waiting) and herd.running() and not ctx.cancelled.is_set():
        ctx.cancelled.wait(0.005)
    ctx.step()
    version, value = client.load(key)
    if writer is not None:
        ctx.step()
        writer.write(key)  # commits v2; its delete invalidates the token
    ctx.step()
    client.lease_fill(key, got.token, version, value)
    ctx.history.ok(op, {"key": key, "version": version, "from": "db"})
    events.read(ctx, client.name, key, version, "db")
    herd.join()


class Herd:
    """Reads of one key, each reader on a thread of its own, started at once."""

    def __init__(self, readers: list[Client] | tuple, key: str):
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._read, args=(c, key), name=c.name) for c in readers]
        for t in self.threads:
            t.start()

    def _read(self, client: Client, key: str) -> None:
        try:
            client.read(key)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            self.errors.append(exc)

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join(self) -> None:
        """Waits for every reader; a reader's error is raised here, in the calling thread."""
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]
