"""Scenarios of binlog change data capture, on two dedicated servers: db1 holds A and writes the
binlog, db2 holds B and the syncer's offsets."""

from apps.runs.registry import Check, Fault, Invariant, Scenario

from . import common
from .engine import cdc
from .engine.driver import late_steps
from .engine.tables import Pair, table
from .scenarios_narration import CATCH_UP, LATE_OPEN, WORKLOAD, check, cmd, late_committed, phase, state

FAULTS = (
    Fault("kill", ("db2",), "SIGKILL the target's server: the step fails, and is redone from the offset in B"),
    Fault("restart", ("db2",), "start the target again on the same data and port"),
    Fault("partition", ("db2",), "the target's proxy holds all traffic until healed"),
    Fault("heal", ("db2",), "end the partition"),
    Fault("pause", ("db1",), "SIGSTOP the source: the workload and the reader wait on it"),
    Fault("resume", ("db1",), "SIGCONT"),
)


def _read(ctx, side, statement, args=()):
    conn = Pair(ctx.nodes).connect(side)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())
    finally:
        conn.close()


NOT_REACHED = "the run ended before its tables were made"


def offset_on_the_source(ctx, result):
    """The committed offset B's server holds names a place in the binlog the source still has,
    at or before its end: a reader that lost its place did not keep (or invent) a stale offset."""
    if not result or not result.get("tables", True):
        return Check(None, NOT_REACHED)
    stored = _read(ctx, "B", f"SELECT file, pos FROM {cdc.OFFSETS} WHERE name = 'committed'")
    files = [row[0] for row in _read(ctx, "A", "SHOW BINARY LOGS")]
    end_file, end_pos = _read(ctx, "A", "SHOW MASTER STATUS")[0][:2]
    end = {"file": end_file, "pos": int(end_pos)}
    if not stored:
        return Check(False, {"summary": f"B's server holds no committed offset in {cdc.OFFSETS}", "binlogs": files})
    committed = {"file": stored[0][0], "pos": int(stored[0][1])}
    at = f"{committed['file']}:{committed['pos']}"
    if committed["file"] not in files:
        summary = f"the committed offset {at} is in a binlog the source no longer has (it has {', '.join(files)})"
    elif (committed["file"], committed["pos"]) > (end["file"], end["pos"]):
        summary = f"the committed offset {at} is past the end of the source's binlog ({end['file']}:{end['pos']})"
    else:
        summary = f"the committed offset {at} is in the source's binlog, which ends at {end['file']}:{end['pos']}"
    held = committed["file"] in files and (committed["file"], committed["pos"]) <= (end["file"], end["pos"])
    return Check(held, {"summary": summary, "committed": committed, "binlogs": files, "end": end})


def added_column(ctx, result):
    """B has the column the ALTER added to A, and every row holds A's value in it."""
    if not result or not result.get("tables", True):
        return Check(None, NOT_REACHED)
    column = cdc.ADDED_COLUMN
    statement = (
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "AND column_name = %s"
    )
    pair = Pair(ctx.nodes)
    has = {side: int(_read(ctx, side, statement, (pair.database(side), table(side), column))[0][0]) for side in "AB"}
    if not has["A"]:
        return Check(None, {"summary": f"A has no column {column}: the ALTER never ran"})
    if not has["B"]:
        return Check(False, {"summary": f"A has column {column}, B does not"})
    values = {side: dict(_read(ctx, side, f"SELECT id, {column} FROM {table(side)} ORDER BY id")) for side in "AB"}
    wrong = [
        {"id": id, "A": value, "B": values["B"][id]}
        for id, value in values["A"].items()
        if id in values["B"] and values["B"][id] != value
    ]
    if wrong:
        ids = ", ".join(str(w["id"]) for w in wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        summary = f"{len(wrong)} of {len(values['A'])} rows hold another {column} in B than in A, e.g. id {ids}"
    else:
        summary = f"B has column {column}, with A's value in all {len(values['A'])} rows"
    evidence = {"summary": summary, "rows": len(values["A"]), "different": len(wrong), "keys": wrong[:20]}
    return Check(not wrong, evidence)


def cdc_binlog(ctx):
    return cdc.run_cdc(ctx)


def schema_change(ctx):
    # Once the long transaction has committed: until then it holds a lock the ALTER would wait for.
    plan = cdc.SchemaChange(ctx, at=late_steps(ctx.params["steps"])[1])
    return cdc.run_cdc(ctx, before_step=plan.before_step)


def binlog_purged(ctx):
    steps = ctx.params["steps"]
    outage = cdc.ReaderOutage(ctx, down=max(1, steps // 3), up=max(2, 2 * steps // 3))
    return cdc.run_cdc(ctx, before_step=outage.before_step)


def at_least_steps(n, why):
    def check(clean):
        return {"steps": [f"must be at least {n}: {why}"]} if clean["steps"] < n else {}

    return check


OFFSET = Invariant(
    "offset_on_the_source",
    "the committed offset kept in B's server is a position the source's binlog still has",
    offset_on_the_source,
)

SNAPSHOT = state(
    "A's snapshot is in B; streaming starts from the binlog position it matches, so no change is missed or read twice.",
    "snapshot",
)

CDC_CAPTIONS = (
    cmd(
        "The syncer opens a consistent snapshot of A and notes the binlog position it matches.",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
    ),
    SNAPSHOT,
    phase("A keeps changing: every change it commits appears in its binlog as a row event.", "workload"),
    state(
        "A long transaction writes to A and stays open: nothing of it is in the binlog until it commits.",
        "late",
        state="open",
    ),
    state(
        "A delete is a row event like any other: the reader deletes the row from B.", "tape", event="DeleteRowsEvent"
    ),
    late_committed("The long transaction commits: its rows enter the binlog now, and reach B in commit order."),
    CATCH_UP,
    check(
        "The checker finds B equal to A, and B's offset at a position the source's binlog still has.",
        "offset_on_the_source",
        True,
    ),
)

SCHEMA_CAPTIONS = (
    SNAPSHOT,
    WORKLOAD,
    state("A long transaction is open on A: an ALTER of its table has to wait until it commits.", "late", state="open"),
    late_committed("The long transaction has committed and let go of its locks: the ALTER can run."),
    cmd(
        "ALTER TABLE a ADD COLUMN note runs on the source, and every row of A gets a value in it.",
        "ALTER TABLE a",
        actor="dba",
    ),
    state(
        "The syncer reads the ALTER from the binlog and adds the column to B: row events after it carry the column.",
        "schema",
        table="B",
    ),
    CATCH_UP,
    check("The checker finds the column in B, with A's value in every row.", "added_column", True),
)

PURGED_CAPTIONS = (
    state(
        "The first snapshot is in B; streaming starts from its binlog position.", "snapshot", why="the first snapshot"
    ),
    WORKLOAD,
    LATE_OPEN,
    state("The reader goes down, its committed offset kept in B, while A keeps changing.", "reader", state="down"),
    state("The source rotates its binlog and purges the files the reader has not read yet.", "purge"),
    state(
        "The reader starts again from its committed offset: a position the source no longer has.", "reader", state="up"
    ),
    state(
        "The server answers 1236: those changes are gone, and skipping to where the binlog now begins would lose them.",
        "purged",
    ),
    state(
        "So the syncer takes a new snapshot of A and streams on from the position it matches.",
        "snapshot",
        why="a new snapshot after 1236",
    ),
    check(
        "The checker finds B equal to A and B's offset in a binlog the source still has.", "offset_on_the_source", True
    ),
)

SCENARIOS = (
    Scenario(
        name="cdc-binlog",
        duration_s=common.paced(17),
        title="Change data capture: a snapshot, then the binlog",
        summary=(
            "As Debezium does it: a consistent snapshot of A (`START TRANSACTION WITH CONSISTENT "
            "SNAPSHOT`) with the binlog position it matches, then A's row events streamed from that "
            "position while the workload writes. Source transactions land in B in batches, each batch "
            "with the offset after its last in one transaction of B; deletes and the late transaction arrive like any other change, "
            "in commit order. Kill or cut off the target, pause the source: the syncer starts again "
            "from the offset B holds."
        ),
        engine=cdc_binlog,
        params=common.params(),
        invariants=(*common.INVARIANTS, OFFSET),
        faults=FAULTS,
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the tape of binlog events and the two offsets: B changes only by what A's binlog says, whole "
            "source transactions applied together with the offset after them in one transaction of B."
        ),
        captions=CDC_CAPTIONS,
    ),
    Scenario(
        name="schema-change",
        duration_s=common.paced(10),
        title="Change data capture across ALTER TABLE",
        summary=(
            "Once the long transaction has committed (an ALTER waits for the locks of every open "
            "transaction on its table), `ALTER TABLE a ADD COLUMN note` runs on the source and fills it "
            "in for every row (or press \u201crun the ALTER\u201d). Rows written before it are decoded with the "
            "columns they had, rows after it with the new one: with binlog_row_metadata=FULL each row "
            "event names its columns. The syncer adds the column to B and carries its values."
        ),
        engine=schema_change,
        params=common.params(),
        invariants=(
            *common.INVARIANTS,
            OFFSET,
            Invariant("added_column", "B has the added column, with A's value in every row", added_column),
        ),
        faults=(*FAULTS, Fault("alter", ("db1",), "run the ALTER TABLE a ADD COLUMN now")),
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the ALTER TABLE on A: row events before it are decoded without the new column, those after it "
            "with it, and the syncer adds the column to B in between."
        ),
        captions=SCHEMA_CAPTIONS,
        cross_check=at_least_steps(3, "the ALTER runs after the long transaction, before the end"),
    ),
    Scenario(
        name="binlog-purged",
        duration_s=common.paced(7),
        title="Change data capture when the binlog it needs is purged",
        summary=(
            "The reader goes down; while it is down the source rotates its binlog (`FLUSH BINARY LOGS`) "
            "and purges the files the reader had not read (`PURGE BINARY LOGS`). When it comes back, "
            "the server answers error 1236: those changes are gone. The syncer says so and takes a "
            "new snapshot, instead of skipping to where the binlog now begins and losing them."
        ),
        engine=binlog_purged,
        params=common.params(),
        invariants=(*common.INVARIANTS, OFFSET),
        faults=FAULTS,
        cluster=common.TWO_SERVERS,
        watch=(
            "Watch the reader go down and the source purge the binlog it still needs: when it comes back the "
            "server answers 1236, and the syncer takes a new snapshot instead of skipping ahead."
        ),
        captions=PURGED_CAPTIONS,
        cross_check=at_least_steps(3, "the reader goes down, the binlog is purged, it comes back"),
    ),
)
