"""Scenarios of the chunked full copy and its retries, on two dedicated servers (db1 holds A, db2
holds B), so that the target's connections can be killed, its server killed or cut off, and a reply
lost on its proxy. The copy reads no binlog: the servers need no options."""

import math

from apps.runs.registry import Fault, Param, Scenario

from . import common
from .engine.copy import WRITERS, ChunkCopy, Retries
from .engine.driver import run_sync
from .scenarios_narration import CATCH_UP, MATCHED, WORKLOAD, check, cmd, fault, late_committed, phase, state

TARGET = ("db2",)
FAULTS = (
    Fault("kill-connections", TARGET, "kill every connection to the target: the chunk in flight is retried"),
    Fault("kill", TARGET, "SIGKILL the target's server: chunks fail until it is back (at the latest for the catch-up)"),
    Fault("restart", TARGET, "start the target again on the same data"),
    Fault("partition", TARGET, "cut the target off through its proxy: chunks time out and are retried"),
    Fault("heal", TARGET, "end the partition"),
    Fault("lose-reply", TARGET, "the target's next answer is lost: it did the work, the copier sees a lost connection"),
)
PARAMS = common.params(
    chunk=common.chunk_param(),
    attempts=Param("attempts", "int", 5, "tries per chunk before a pass gives up on it", min=1, max=10),
)
# The idempotent copy's own: how a chunk is written, and how many are written at once.
IDEMPOTENT_PARAMS = (
    *PARAMS,
    Param(
        "writer",
        "choice",
        "upsert",
        "upsert: INSERT … ON DUPLICATE KEY UPDATE; load-data: the chunk streamed by LOAD DATA LOCAL "
        "INFILE … REPLACE (no value converted to Python: the fast way for a large table)",
        choices=WRITERS,
    ),
    Param("parallel", "int", 1, "chunks written at once, each on a target connection of its own", min=1, max=8),
)
# Only inserts, and no late transaction: what the plain-INSERT copy can follow, so that the one
# thing wrong with it is what a lost reply does. Both retry scenarios use this same workload.
INSERTS_ONLY = {"insert": 1, "update": 0, "delete": 0}


def paced(full_speed_s: float, catch_up: int = 1):
    """common.paced, and the first copy's step boundaries: one after each full chunk."""
    base = common.paced(full_speed_s, catch_up)
    return lambda p: base(p) + (p["rows"] // p["chunk"]) / 2


def middle_chunk(params: dict) -> int:
    """The index of the chunk in the middle of the first copy: where the fault strikes."""
    return math.ceil(params["rows"] / params["chunk"]) // 2


def copier(*, idempotent: bool, fault: str, times: int):
    def make(ctx, pair, workload):
        return ChunkCopy(
            ctx,
            pair,
            chunk=ctx.params["chunk"],
            idempotent=idempotent,
            load_data=idempotent and ctx.params["writer"] == "load-data",
            parallel=ctx.params["parallel"] if idempotent else 1,
            retries=Retries(attempts=ctx.params["attempts"]),
            faults={middle_chunk(ctx.params): (fault, times)},
        )

    return make


def full_copy(ctx):
    # Killed on three attempts in a row, so the backoff's window doubles twice before one succeeds.
    return run_sync(ctx, copier(idempotent=True, fault="kill-connections", times=3))


def retry_duplicates(ctx):
    return run_sync(
        ctx, copier(idempotent=False, fault="lose-reply", times=1), keyed_target=False, late=False, mix=INSERTS_ONLY
    )


def retry_idempotent(ctx):
    return run_sync(ctx, copier(idempotent=True, fault="lose-reply", times=1), late=False, mix=INSERTS_ONLY)


LOST_REPLY = fault(
    "The target's proxy will drop the answer to the next COMMIT: B's server commits chunk 2, the copier is not told.",
    "lose-reply",
)
COMMIT_UNANSWERED = cmd(
    "The copier sees a lost connection where the COMMIT's answer should be, though chunk 2 is in B already.",
    "COMMIT chunk 2",
    ok=False,
)

FULL_COPY_CAPTIONS = (
    phase(
        "The copy reads A by primary-key ranges (WHERE id > last ORDER BY id LIMIT chunk), a transaction of B each.",
        "start",
    ),
    fault(
        "The target's connections are killed in the middle of chunk 2: its transaction is rolled back.",
        "kill-connections",
    ),
    state(
        "The copier waits a random time below a cap that doubles with each failed attempt, then retries on a new connection.",
        "retry",
    ),
    WORKLOAD,
    cmd(
        "The pass deletes from B the ids A no longer has in this range: deletes reach B too.",
        "DELETE FROM b",
        actor="copier",
    ),
    late_committed("The long transaction commits: the next pass copies its rows like any others."),
    MATCHED,
    check("The checker finds B equal to A: the price was rewriting every row on every pass.", "b_equals_a", True),
)

DUPLICATES_CAPTIONS = (
    phase("The copy writes B with plain INSERTs and keeps the last id whose COMMIT was acknowledged.", "start"),
    LOST_REPLY,
    COMMIT_UNANSWERED,
    state("It retries the chunk it believes failed: the same rows are inserted into B a second time.", "retry"),
    phase("A keeps inserting: each pass copies the rows past the last acknowledged id.", "workload"),
    CATCH_UP,
    check(
        "The checker finds every business key of chunk 2 twice in B: a plain INSERT is not safe to retry.",
        "no_duplicate_keys",
        False,
    ),
)

IDEMPOTENT_CAPTIONS = (
    phase("The copy writes upserts (INSERT … ON DUPLICATE KEY UPDATE) into a B keyed by A's id.", "start"),
    LOST_REPLY,
    COMMIT_UNANSWERED,
    state("The copier retries chunk 2 on a new connection.", "retry"),
    state(
        "The retried chunk finds its rows already in B (the lost COMMIT had landed) and rewrites them in place.",
        "row",
        actor="B",
        op="upsert",
    ),
    phase("A keeps inserting: each pass copies the rows past the last acknowledged id.", "workload"),
    check(
        "The checker finds each business key once: this retry was safe, doing it twice is doing it once.",
        "no_duplicate_keys",
        True,
    ),
)

SCENARIOS = (
    Scenario(
        name="full-copy",
        title="Chunked full copy, retried with backoff",
        summary=(
            "A is copied into B by primary-key ranges (keyset pagination: `WHERE id > last ORDER BY "
            "id LIMIT chunk`), each chunk one transaction on the target. In the middle of the copy "
            "the target's connections are killed on three attempts in a row: each time the chunk's "
            "transaction is rolled back and retried on a new connection after a wait drawn at random "
            "from a window that doubles (exponential backoff with full jitter). The writes are "
            "upserts (`INSERT … ON DUPLICATE KEY UPDATE`) and each chunk also deletes the ids A no "
            "longer has in its range, so every pass copies the whole table again and updates and "
            "deletes reach B; the price is rewriting every row on every pass. With `writer` "
            "load-data each chunk is instead read as text and streamed into B by `LOAD DATA LOCAL "
            "INFILE … REPLACE`, and `parallel` writes several chunks at once: how a large table is "
            "copied fast."
        ),
        engine=full_copy,
        params=IDEMPOTENT_PARAMS,
        duration_s=paced(4),
        invariants=common.INVARIANTS,
        faults=FAULTS,
        cluster={"mariadb": 2},
        watch=(
            "Watch chunk 2: its connection to the target is killed on three tries in a row, and each retry waits "
            "a random time below a cap that doubles (50, 100, 200 ms) before it lands."
        ),
        captions=FULL_COPY_CAPTIONS,
    ),
    Scenario(
        name="retry-duplicates",
        title="A lost reply, and a plain INSERT retried",
        summary=(
            "The copy writes B with plain INSERTs (B has a key of its own, A's id is just a column) "
            "and keeps the last id whose COMMIT was acknowledged, copying the rows past it on each "
            "pass. In the middle of the first copy the target's proxy loses the reply to a COMMIT: "
            "the server committed the chunk, the copier sees a lost connection, retries, and writes "
            "the chunk again. The checker finds every business key of that chunk twice in B. The "
            "workload only inserts here: this copy could not see an update or a delete anyway."
        ),
        engine=retry_duplicates,
        params=PARAMS,
        duration_s=paced(2, catch_up=20),
        invariants=common.INVARIANTS,
        expected="fail",
        faults=FAULTS,
        cluster={"mariadb": 2},
        watch=(
            "Watch chunk 2: the answer to its COMMIT is lost, the copier retries with a plain INSERT, and the "
            "same rows land in B twice."
        ),
        captions=DUPLICATES_CAPTIONS,
    ),
    Scenario(
        name="retry-idempotent",
        title="A lost reply, and an idempotent write retried",
        summary=(
            "The same workload and the same lost reply as retry-duplicates, but B is keyed by A's id "
            "and the copy writes upserts (`INSERT … ON DUPLICATE KEY UPDATE`): the retried chunk "
            "lands on the rows its lost COMMIT already wrote, and B holds each key once. A retry is "
            "only safe when doing the write twice is the same as doing it once. `LOAD DATA … "
            "REPLACE` (`writer` load-data) is idempotent the same way."
        ),
        engine=retry_idempotent,
        params=IDEMPOTENT_PARAMS,
        duration_s=paced(3),
        invariants=common.INVARIANTS,
        faults=FAULTS,
        cluster={"mariadb": 2},
        watch=(
            "Watch chunk 2 again: its COMMIT's answer is lost and the chunk is retried, but as an upsert keyed by "
            "A's id, so it lands on the rows already there."
        ),
        captions=IDEMPOTENT_CAPTIONS,
    ),
)
