"""The shape every sync scenario shares: make A and B, load A, start the syncer, then step by step
let the workload write and the syncer work, and at the end give the syncer a few more passes to
catch up, measuring how long after the last write B matched A. Plain Python."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

import pymysql

from apps.runs.engine_api import NodeDown, describe_error

from . import events
from .tables import Pair, checksum, create_tables
from .workload import Workload

CATCH_UP_PASSES = 20  # passes after the workload's last write before the syncer is given up on


class Syncer(Protocol):
    """One way of keeping B equal to A."""

    actor: str

    def start(self) -> None: ...  # before the workload writes: a snapshot, a first copy ...
    def step(self) -> None: ...  # one pass, between two bursts of writes
    def result(self) -> dict: ...  # what the run reports (never what the checkers judge by)

    # and optionally close(), called once at the end whatever happened


# Errors of a server that is gone or unreachable (caught from the package, not pymysql.err: under
# Django that can be a second copy of the module whose classes are not the ones pymysql raises).
UNREACHABLE = (pymysql.OperationalError, pymysql.InterfaceError, ConnectionError, OSError)


def tables_equal(pair: Pair) -> bool:
    """COUNT and BIT_XOR(CRC32) of both tables over new connections (a fault may have killed any
    older one), used to time the catch-up; False while either server does not answer."""
    conns = []
    try:
        conns = [pair.source(), pair.target()]
        return checksum(conns[0], "A") == checksum(conns[1], "B")
    except UNREACHABLE:
        return False
    finally:
        for conn in conns:
            conn.close()


def answers(pair: Pair, side: str, timeout: float = 3.0) -> bool:
    """Whether a side's server answers a new connection within `timeout` s."""
    try:
        conn = pair.connect(side, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    except UNREACHABLE:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    except UNREACHABLE:
        return False
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a connection that just failed may not close cleanly
            pass


def bring_up(ctx: Any, pair: Pair, side: str, actor: str) -> None:
    """Ends whatever fault left a dedicated server unreachable, so the syncer can catch up and the
    checkers can read it: resumes a paused server, restarts a stopped or killed one, heals a partition."""
    if not pair.dedicated or answers(pair, side):
        return
    node = pair.node_of(side)
    ctx.emit("log", actor=actor, label=f"{node} does not answer: bringing it back before the catch-up")
    try:
        ctx.fault("resume", node)  # refused unless it is paused; the refusal says what it is
    except NodeDown as exc:
        if exc.state == "down":
            ctx.fault("restart", node)
    if not answers(pair, side):
        ctx.fault("heal", node)


def on_source(ctx: Any, pair: Pair, workload: Workload, work: Callable[[], None]) -> None:
    """The workload's writes of one step (a burst, the long transaction's start or commit). A
    paused or unreachable source fails them (each one is in the history as unknown), and the
    next step writes on a new connection."""
    try:
        work()
    except UNREACHABLE as exc:
        ctx.emit("log", actor=workload.actor, label=f"A did not take the write: {describe_error(exc)}")
        try:
            workload.conn.close()
        except Exception:  # noqa: BLE001 - the connection the error broke
            pass
        try:
            workload.conn = pair.source()
        except UNREACHABLE:
            pass  # still unreachable: the next write fails the same way and says so


def late_steps(steps: int) -> tuple[int, int]:
    """When the long transaction begins and commits: early, and a few steps before the end."""
    begin = min(1, steps - 1)
    return begin, max(begin + 1, steps - 3) if steps > 1 else begin


def run_sync(
    ctx: Any,
    make_syncer,
    *,
    keyed_target: bool = True,
    late: bool = True,
    mix: dict | None = None,
    before_step: Callable[[int, Any], None] | None = None,
    start_label: str = "start the syncer",
) -> dict:
    """Runs a scenario: `make_syncer(ctx, pair, workload)` builds the syncer under test;
    `before_step(i, syncer)` lets a scenario act on A between steps (an ALTER, a purge). Faults
    may take either dedicated server down: the workload's writes then fail as unknown, and the run
    brings both servers back before it catches up and before the checkers read them."""
    params = ctx.params
    pair = Pair(ctx.nodes)
    create_tables(pair, keyed_target=keyed_target)
    rng = random.Random(ctx.seed)
    workload = Workload(ctx, pair, rng, **({"mix": mix} if mix else {}))
    syncer = None

    def both_up() -> None:
        bring_up(ctx, pair, "A", syncer.actor)
        bring_up(ctx, pair, "B", syncer.actor)

    try:
        ctx.emit("phase", actor="workload", label="load A", data={"phase": "load"})
        workload.load(params["rows"])
        syncer = make_syncer(ctx, pair, workload)
        ctx.emit("phase", actor=syncer.actor, label=start_label, data={"phase": "start"})
        syncer.start()
        ctx.step()
        steps = params["steps"]
        begin, commit = late_steps(steps)
        ctx.emit("phase", actor="workload", label="A keeps changing", data={"phase": "workload"})
        for i in range(steps):
            if late and i == begin and workload.versions:
                on_source(ctx, pair, workload, workload.begin_late)
            if late and i == commit:
                on_source(ctx, pair, workload, workload.commit_late)
            if before_step is not None:
                before_step(i, syncer)
            on_source(ctx, pair, workload, lambda: workload.burst(params["rate"]))
            syncer.step()
            ctx.step()
        ctx.emit("phase", actor=syncer.actor, label="the workload stops; catch up", data={"phase": "catch-up"})
        bring_up(ctx, pair, "A", syncer.actor)
        on_source(ctx, pair, workload, workload.commit_late)
        lag_ms = None
        for _ in range(CATCH_UP_PASSES):
            # Faults pressed during the catch-up are ended too: the checkers must reach both servers.
            both_up()
            if tables_equal(pair):
                lag_ms = round(ctx.clock - (workload.last_write_ms or 0.0), 1)
                break
            syncer.step()
            ctx.step()
        both_up()
        if lag_ms is None and tables_equal(pair):
            lag_ms = round(ctx.clock - (workload.last_write_ms or 0.0), 1)
        caught_up = lag_ms is not None
        label = f"B matched A {lag_ms:.0f} ms after the last write" if caught_up else "B never matched A"
        data = {"name": "convergence_lag_ms", "value": lag_ms, "caught_up": caught_up}
        ctx.emit("metric", actor=syncer.actor, label=label, data=data)
        if caught_up:
            events.lag(ctx, 0.0, actor=syncer.actor)
        return {"tables": True, "writes": workload.writes, "convergence_lag_ms": lag_ms, **syncer.result()}
    finally:
        workload.close()
        if syncer is not None and hasattr(syncer, "close"):
            syncer.close()
