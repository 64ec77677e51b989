"""Scenarios of the CDC applier, a process of its own on two dedicated servers: crashes around its
offset, and several appliers at once."""

from apps.runs.registry import Fault, Param, Scenario

from . import common
from .engine.apply import run_applier
from .scenarios_narration import (
    APPLIER_STARTED,
    B_SNAPSHOT,
    CATCH_UP,
    WORKLOAD,
    account,
    check,
    cmd,
    late_committed,
    state,
)

LATE = late_committed("The long transaction commits: its rows reach the binlog now, for the applier to apply in order.")


def killed(text):
    return state(text, "applier", state="killed")


KILL = Fault("kill", ("applier",), "SIGKILL the applier process at once; it is started again from its offset")


def kills(default: int) -> Param:
    return Param("kills", "int", default, "times the applier SIGKILLs itself at the crash point", min=0, max=20)


PARALLEL = {
    "workers": Param("workers", "int", 3, "appliers working at once", min=2, max=8),
    "hot": Param("hot", "int", 6, "updates of two hot keys, alternating, in a burst each step", min=1, max=100),
    "skew_ms": Param(
        "skew_ms", "int", 50, "how much longer each applier takes per change than the one before it", min=1, max=500
    ),
}


def crash_replay(ctx):
    return run_applier(ctx, mode="after")


def offset_first(ctx):
    return run_applier(ctx, mode="before")


def atomic_offset(ctx):
    return run_applier(ctx, mode="atomic")


def parallel(ctx):
    return run_applier(ctx, mode="after", workers=ctx.params["workers"])


def parallel_keyed(ctx):
    return run_applier(ctx, mode="after", workers=ctx.params["workers"], keyed=True)


CRASH_REPLAY_CAPTIONS = (
    B_SNAPSHOT,
    APPLIER_STARTED,
    WORKLOAD,
    killed("SIGKILL between the two commits: B has the rows, but the offset in B still points before them."),
    state(
        "The new life applies those changes again; each is an upsert or a delete by id, so B ends the same.", "replay"
    ),
    LATE,
    account("The account: every kill cost a replay, and no transaction was passed over."),
    check("The checker finds B equal to A: replaying an idempotent change is harmless.", "b_equals_a", True),
)

OFFSET_FIRST_CAPTIONS = (
    B_SNAPSHOT,
    APPLIER_STARTED,
    WORKLOAD,
    killed("SIGKILL after the offset was committed, before the rows: the offset now points past changes B never got."),
    LATE,
    account("The account: the kills passed over transactions that were never applied, and nothing was replayed."),
    check(
        "The checker lists the acknowledged writes B lost: an offset must not move before the rows it covers are in.",
        "acknowledged_writes",
        False,
    ),
)

ATOMIC_CAPTIONS = (
    B_SNAPSHOT,
    APPLIER_STARTED,
    WORKLOAD,
    killed("SIGKILL before the transaction holding the rows and the offset committed: both roll back together."),
    LATE,
    account("The account: kills, but no replay and no transaction passed over."),
    check("The checker finds B equal to A: the offset can never disagree with the rows.", "b_equals_a", True),
)

PARALLEL_CAPTIONS = (
    B_SNAPSHOT,
    state(
        "The applier reads the binlog and hands each change to whichever applier is free next.",
        "applier",
        state="started",
    ),
    WORKLOAD,
    cmd(
        "The slowest applier writes an update it took a while ago: if a faster one has written a newer version since, "
        "this one overwrites it.",
        "UPSERT",
        actor="applier-w3",
    ),
    late_committed("The long transaction commits: its changes join the queue like any others."),
    CATCH_UP,
    check(
        "The checker finds hot keys whose version in B is older than A's: an older update landed last.",
        "per_key_order",
        False,
    ),
)

KEYED_CAPTIONS = (
    B_SNAPSHOT,
    state(
        "The applier reads the binlog and sends each change to the applier a hash of its key picks.",
        "applier",
        state="started",
    ),
    WORKLOAD,
    cmd(
        "Another key hashes to a third applier: the work is spread, but no key is ever split across two appliers.",
        "UPSERT",
        actor="applier-w3",
    ),
    late_committed("The long transaction commits: each of its changes goes to its key's applier."),
    CATCH_UP,
    check(
        "The checker finds A's version of every key in B: per-key order held while the work was spread.",
        "per_key_order",
        True,
    ),
)

SCENARIOS = (
    Scenario(
        name="cdc-crash-replay",
        duration_s=common.paced(15),
        title="Applier crashes: the offset committed after the rows",
        summary=(
            "The applier streams A's binlog and applies each transaction to B, then commits its offset "
            "in a second transaction. It is SIGKILLed between the two, several times: each restart "
            "streams again from the old offset and replays what B already has. Every apply is an "
            "upsert or a delete by id, so a replay lands once: the replays are counted, and B equals A."
        ),
        engine=crash_replay,
        params=common.params(kills=kills(3)),
        invariants=common.INVARIANTS,
        faults=(KILL,),
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the applier die between committing rows to B and committing its offset: each new life streams "
            "again from the old offset and replays what B already has."
        ),
        captions=CRASH_REPLAY_CAPTIONS,
    ),
    Scenario(
        name="cdc-offset-first",
        duration_s=common.paced(10),
        title="Applier crashes: the offset committed before the rows",
        summary=(
            "The same applier, but it commits its offset first and applies the rows after. A SIGKILL "
            "between the two leaves the offset past changes B never got; the restarted applier "
            "streams on from there and never sees them. The checker lists what B lost."
        ),
        engine=offset_first,
        params=common.params(kills=kills(4)),
        invariants=common.INVARIANTS,
        expected="fail",
        faults=(KILL,),
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the applier commit its offset before the rows and die in between: each new life starts past "
            "changes B never got."
        ),
        captions=OFFSET_FIRST_CAPTIONS,
    ),
    Scenario(
        name="cdc-atomic-offset",
        duration_s=common.paced(12),
        title="Applier crashes: the offset in the same transaction as the rows",
        summary=(
            "The applier writes its offset row in the same B transaction as the rows it applies. A "
            "SIGKILL before that transaction commits rolls back both: the restart streams from the "
            "old offset into a B without them. N kills, zero gaps, zero replays."
        ),
        engine=atomic_offset,
        params=common.params(kills=kills(3)),
        invariants=common.INVARIANTS,
        faults=(KILL,),
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the kills: the offset row is written in the same transaction of B as the rows, so a kill rolls "
            "back both and the next life starts exactly where B stops."
        ),
        captions=ATOMIC_CAPTIONS,
    ),
    Scenario(
        name="parallel-apply",
        duration_s=common.paced(13),
        title="Parallel appliers without key affinity",
        summary=(
            "Several appliers take the changes from one queue, whichever is free next, and some are "
            "slower than others. Two hot keys are updated in a burst each step: an older update held "
            "by a slow applier lands after a newer one a fast applier already wrote, and B keeps the "
            "older version. The checker finds the keys whose version in B is not A's."
        ),
        engine=parallel,
        params=common.params(**PARALLEL),
        invariants=common.INVARIANTS,
        expected="fail",
        faults=(KILL,),
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the two hot keys: appliers of uneven speed take their updates from one queue, and a slow one can "
            "write an older version after a fast one wrote a newer."
        ),
        captions=PARALLEL_CAPTIONS,
    ),
    Scenario(
        name="parallel-apply-keyed",
        duration_s=common.paced(13),
        title="Parallel appliers partitioned by key",
        summary=(
            "The same appliers, as uneven, but each change goes to the applier chosen by a hash of "
            "its key, as Kafka partitions by key: one key's changes are applied by one applier, in "
            "binlog order. The work is still spread, and per-key order holds."
        ),
        engine=parallel_keyed,
        params=common.params(**PARALLEL),
        invariants=common.INVARIANTS,
        faults=(KILL,),
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch which applier writes each key: a hash of the key picks it, so one key's updates are always "
            "applied by one applier, in binlog order."
        ),
        captions=KEYED_CAPTIONS,
    ),
)
