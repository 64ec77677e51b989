"""Scenarios on the shared MariaDB (A and B are two databases of the run): no binlog is read and no
server is stopped."""

import random

from apps.runs.registry import Fault, Scenario

from . import common
from .engine.checksum import ChecksumRepair, Drift, DriftThenRepair
from .engine.driver import run_sync
from .engine.naive import NaiveLoop
from .engine.poll import WatermarkPoller
from .scenarios_narration import (
    CATCH_UP,
    LATE_OPEN,
    MATCHED,
    NEVER_MATCHED,
    WORKLOAD,
    check,
    cmd,
    late_committed,
    phase,
    state,
)


def naive_latest(ctx):
    return run_sync(ctx, NaiveLoop)


def incremental_timestamp(ctx):
    return run_sync(ctx, WatermarkPoller)


def drift_passes(steps: int) -> set[int]:
    """The passes before which B drifts: a third and two thirds of the way through the workload."""
    return {max(1, steps // 3), max(1, (2 * steps) // 3)}


def checksum_repair(ctx):
    def make(ctx, pair, workload):
        # A seed of its own, so the drift does not shift the workload's choices.
        drift = Drift(ctx, pair, random.Random(f"drift-{ctx.seed}"))
        ctx.on_fault("drift", drift.on_fault)
        repairer = ChecksumRepair(ctx, pair, workload, chunk=ctx.params["chunk"])
        return DriftThenRepair(repairer, drift, drift_passes(ctx.params["steps"]))

    return run_sync(ctx, make)


NAIVE_CAPTIONS = (
    phase("The loop starts: it reads only A's newest row (ORDER BY id DESC LIMIT 1) and inserts it into B.", "start"),
    WORKLOAD,
    state("A row is deleted from A: the loop only ever inserts, so B keeps it.", "row", actor="A", op="delete"),
    LATE_OPEN,
    late_committed("The long transaction commits a row whose id is below the newest one: the loop never looks at it."),
    CATCH_UP,
    NEVER_MATCHED,
    check(
        "The checker compares the tables: B lacks most of A's rows and still has rows A deleted.", "b_equals_a", False
    ),
)

WATERMARK_CAPTIONS = (
    phase(
        "The first pass reads every row newer than the watermark, copies it into B, and moves the watermark on.",
        "start",
    ),
    WORKLOAD,
    state(
        "A row is deleted from A: no row is left for updated_at > watermark to find, so B keeps it.",
        "row",
        actor="A",
        op="delete",
    ),
    state(
        "A long transaction writes rows stamped with the time it began, and does not commit yet: no pass can see them.",
        "late",
        state="open",
    ),
    late_committed(
        "It commits now, but its rows carry its start time, already behind the watermark: no pass will read them."
    ),
    CATCH_UP,
    check(
        "The checker finds the long transaction's writes lost and A's deleted rows still in B.",
        "acknowledged_writes",
        False,
    ),
)

CHECKSUM_CAPTIONS = (
    state("B starts as an exact copy of A: from here on the syncer only verifies and repairs.", "load", actor="B"),
    WORKLOAD,
    state(
        "This chunk's COUNT(*) and BIT_XOR(CRC32) differ between A and B: only this one is read row by row.",
        "chunk",
        state="differ",
    ),
    state(
        "Its differing rows are upserted and its strays deleted, in one transaction of B: the chunk is equal again.",
        "chunk",
        state="repaired",
    ),
    cmd(
        "B drifts behind the syncer's back: a row of B changed, deleted or added, as a stray script would.",
        "",
        actor="drift",
    ),
    late_committed("The long transaction commits: its rows make their chunk differ, to be repaired like any drift."),
    MATCHED,
    check("The checker compares every chunk, then every row: B equals A.", "b_equals_a", True),
)

SCENARIOS = (
    Scenario(
        name="naive-latest",
        duration_s=common.paced(7, catch_up=20),
        title="The naive loop: copy the newest row",
        summary=(
            "The loop as people first write it: read A's newest row (`ORDER BY id DESC LIMIT 1`), "
            "insert it into B, commit, retry a few times on an error. While the workload writes, "
            "two inserts between two looks leave the first behind, and no update or delete is ever "
            "copied: the checker lists the keys B is missing."
        ),
        engine=naive_latest,
        params=common.params(),
        invariants=common.INVARIANTS,
        expected="fail",
        watch=(
            "Watch B's side: each look copies only A's newest row, so a row inserted between two looks is left "
            "behind, and no update or delete ever reaches B."
        ),
        captions=NAIVE_CAPTIONS,
    ),
    Scenario(
        name="incremental-timestamp",
        duration_s=common.paced(6, catch_up=20),
        title="Polling on an updated_at watermark",
        summary=(
            "Every pass reads `WHERE updated_at > watermark ORDER BY updated_at, id`, upserts what it "
            "read into B and moves the watermark to the newest timestamp seen. A delete leaves no row "
            "to read, and the long transaction, stamped with the time it began, commits after the "
            "watermark has passed that time: its writes are never read. The checker lists the lost "
            "updates and the deleted rows B still has."
        ),
        engine=incremental_timestamp,
        params=common.params(),
        invariants=common.INVARIANTS,
        expected="fail",
        watch=(
            "Watch the watermark climb after each pass, and what it never sees: a delete leaves no row to read, "
            "and the long transaction commits with timestamps already behind the watermark."
        ),
        captions=WATERMARK_CAPTIONS,
    ),
    Scenario(
        name="checksum-repair",
        duration_s=common.paced(4),
        title="Chunk checksums find the drift, only those chunks are repaired",
        summary=(
            "B starts as a copy of A, then drifts: rows changed, deleted and added behind the "
            "syncer's back (twice on its own, and whenever the drift button is pressed). Every pass "
            "cuts both tables into chunks of ids and compares each chunk's COUNT(*) and "
            "BIT_XOR(CRC32(...)), as pt-table-checksum does; only the chunks that differ are read "
            "row by row and repaired, as pt-table-sync does. The chunks turn green or red."
        ),
        engine=checksum_repair,
        params=common.params(rows=100, rate=1, chunk=common.chunk_param(10)),
        invariants=common.INVARIANTS,
        faults=(Fault("drift", ("B",), "change B behind the syncer's back: two rows changed, one deleted, one added"),),
        watch=(
            "Watch the chunks: each pass compares a fingerprint of every chunk on both sides, and only a chunk "
            "that differs (red) is read row by row and repaired."
        ),
        captions=CHECKSUM_CAPTIONS,
    ),
)
