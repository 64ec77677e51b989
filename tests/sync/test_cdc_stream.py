"""The CDC syncer's replication stream across steps, on two dedicated MariaDB servers: one
connection to the source for the whole run, each change applied to B once, the stream dropped
and opened again at B's offset when a step fails, and a batch's rows applied in the order read."""

import dataclasses
import os
import time

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario
from apps.sync.engine import binlog, cdc
from apps.sync.engine.driver import late_steps
from apps.sync.engine.tables import Pair, checksum
from tests.engine import run_engine

PARAMS = {"rows": 20, "rate": 4, "steps": 8}


def run_with(supervisor, before_step, params=PARAMS):
    """The cdc-binlog scenario, with `before_step(i, syncer)` called before each of its steps."""
    scenario = get_scenario("sync", "cdc-binlog")
    scenario = dataclasses.replace(scenario, engine=lambda ctx: cdc.run_cdc(ctx, before_step=before_step))

    def start_cluster(run_id, emit):
        return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

    ctx, result, checks, events = run_engine(scenario, params=params, seed=11, nodes=start_cluster)
    return ctx, result, {c["name"]: c["held"] for c in checks}, events


def dump_threads(syncer):
    """The ids of the source's connections streaming its binlog to a replica."""
    conn = Pair(syncer.ctx.nodes).source()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
            return sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()


def settled_dump_threads(syncer, timeout=5.0):
    """dump_threads once the source has noticed a stream that was closed (it finds out when it
    next writes to it: a heartbeat or an event), or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while (ids := dump_threads(syncer)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return ids


def test_one_replication_connection_serves_every_step_and_each_change_lands_in_b_once(supervisor):
    seen = []
    ctx, result, checks, events = run_with(supervisor, lambda i, syncer: seen.append(dump_threads(syncer)))
    assert checks == dict.fromkeys(checks, True), checks
    # Before the first step no stream is open; from then on the same one, between every two steps.
    assert seen[0] == []
    assert len(seen[1]) == 1 and all(ids == seen[1] for ids in seen[1:]), seen
    # Every row the workload wrote reached B as one applied change, none twice.
    applied = [e for e in events if e["kind"] == "state" and (e["data"] or {}).get("by") == "cdc"]
    assert len(applied) == result["writes"] and result["failed_steps"] == 0


def test_each_step_applies_what_a_had_when_it_began_however_long_the_wait_between_steps(supervisor):
    """A slow run: the source's heartbeats pile up in the open stream between two steps, ahead of
    the next changes; the step reads past them to the binlog's end all the same."""
    behind = {}
    late_commit = late_steps(PARAMS["steps"])[1]

    def slow(i, syncer):
        time.sleep(0.5)  # a run paced at two steps a second
        if i and i != late_commit:  # what the last step read, and nothing written since
            pair = Pair(syncer.ctx.nodes)
            sides = {side: pair.connect(side) for side in "AB"}
            behind[i] = checksum(sides["A"], "A") != checksum(sides["B"], "B")
            for conn in sides.values():
                conn.close()

    ctx, result, checks, events = run_with(supervisor, slow)
    assert checks == dict.fromkeys(checks, True), checks
    assert behind and not any(behind.values()), behind


def test_a_failed_step_drops_the_stream_and_the_next_opens_one_at_the_offset_in_b(supervisor):
    seen = {}

    def kill_then_restart(i, syncer):
        if i == 5:
            syncer.ctx.fault("restart", "db2")
        seen[i] = settled_dump_threads(syncer) if i == 4 else dump_threads(syncer)
        if i == 3:
            syncer.ctx.fault("kill", "db2")  # this step fails: B does not answer

    ctx, result, checks, events = run_with(supervisor, kill_then_restart)
    assert result["failed_steps"] >= 1
    assert checks == dict.fromkeys(checks, True), checks
    # The failed step's stream is gone with it; once B is back, another one reads from B's offset.
    assert len(seen[3]) == 1 and seen[4] == []
    assert len(seen[6]) == 1 and seen[6] != seen[3], seen


def test_a_batch_lands_in_the_order_read_whatever_the_statements_it_is_grouped_into(supervisor):
    """A row inserted, updated, deleted and inserted again under the same id in one step: its runs
    of upserts and of deletes go to B in the order read, so the row is there, as last written."""
    outcome = {}

    def craft(i, syncer):
        if i:
            return
        start = syncer.committed
        conn = Pair(syncer.ctx.nodes).source()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO a (bkey, value, version, updated_at) VALUES ('x1', 'one', 1, NOW(6))")
            id = cur.lastrowid
            cur.execute("UPDATE a SET value = 'one-b', version = 2 WHERE id = %s", (id,))
            cur.execute("DELETE FROM a WHERE id = %s", (id,))
            cur.execute(
                "INSERT INTO a (id, bkey, value, version, updated_at) VALUES (%s, 'x1', 'again', 1, NOW(6))", (id,)
            )
            cur.execute("UPDATE a SET value = 'again-b', version = 2 WHERE id = %s", (id,))
        conn.close()
        reader = binlog.Reader(syncer.reader_params(), 4001, start, syncer.pair.database("A"), "a")
        changes = [c for c in reader if c.op != "commit"]
        outcome["runs"] = [(op, len(run)) for (op, _), run in cdc.runs(changes, syncer.columns)]
        syncer.step()  # the five transactions, before the workload's first burst
        target = Pair(syncer.ctx.nodes).target()
        with target.cursor() as cur:
            cur.execute("SELECT value, version FROM b WHERE id = %s", (id,))
            outcome["b"] = cur.fetchall()
        target.close()

    ctx, result, checks, events = run_with(supervisor, craft)
    assert checks == dict.fromkeys(checks, True), checks
    assert outcome["runs"] == [("upsert", 2), ("delete", 1), ("upsert", 2)]
    assert outcome["b"] == (("again-b", 2),)


def test_the_upsert_and_delete_statements_name_the_rows_they_carry():
    change = binlog.Position("binlog.000001", 4)
    rows = [
        binlog.Change("update", change, change, "UpdateRowsEvent", 0, id=i, row={"id": i, "version": 2})
        for i in (7, 9, 11, 12)
    ]
    assert cdc.shown(rows) == "id=7 v2, id=9 v2, id=11 v2 … (4 rows)"
    assert cdc.shown(rows[:1]) == "id=7 v2"
