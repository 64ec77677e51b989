"""The shape every sync scenario shares: make A and B, load A, start the syncer, then step by step
let the workload write and the syncer work, and at the end give the syncer a few more passes to
catch up, measuring how long after the last write B matched A. Plain Python."""

from __future__ import annotations

import random
from typing import Any, Protocol

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


def tables_equal(pair: Pair, conns: dict) -> bool:
    """A cheap whole-table comparison (COUNT and BIT_XOR of CRC32), used to time the catch-up."""
    return checksum(conns["A"], "A") == checksum(conns["B"], "B")


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
    pair: Pair | None = None,
) -> dict:
    """Runs a scenario: `make_syncer(ctx, pair, workload)` builds the syncer under test."""
    params = ctx.params
    pair = pair or Pair(ctx.nodes)
    create_tables(pair, keyed_target=keyed_target)
    rng = random.Random(ctx.seed)
    workload = Workload(ctx, pair, rng, **({"mix": mix} if mix else {}))
    conns = {"A": pair.source(), "B": pair.target()}
    try:
        ctx.emit("phase", actor="workload", label="load A", data={"phase": "load"})
        workload.load(params["rows"])
        syncer = make_syncer(ctx, pair, workload)
        ctx.emit("phase", actor=syncer.actor, label="start the syncer", data={"phase": "start"})
        syncer.start()
        ctx.step()
        steps = params["steps"]
        begin, commit = late_steps(steps)
        ctx.emit("phase", actor="workload", label="A keeps changing", data={"phase": "workload"})
        for i in range(steps):
            if late and i == begin and workload.versions:
                workload.begin_late()
            if late and i == commit:
                workload.commit_late()
            workload.burst(params["rate"])
            syncer.step()
            ctx.step()
        workload.commit_late()
        ctx.emit("phase", actor=syncer.actor, label="the workload stops; catch up", data={"phase": "catch-up"})
        lag_ms = None
        for _ in range(CATCH_UP_PASSES):
            if tables_equal(pair, conns):
                lag_ms = round(ctx.clock - (workload.last_write_ms or 0.0), 1)
                break
            syncer.step()
            ctx.step()
        else:
            if tables_equal(pair, conns):
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
        for conn in conns.values():
            conn.close()
