"""Scenarios of the CDC applier, a process of its own on two dedicated servers: crashes around its
offset, and several appliers at once."""

from apps.runs.registry import Fault, Param, Scenario

from . import common
from .engine.apply import run_applier

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
    ),
)
