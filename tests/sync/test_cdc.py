"""Binlog change data capture in the run's process, on two dedicated MariaDB servers: snapshot and
stream, an ALTER TABLE while streaming, a purged binlog, faults on the target, and the scenarios'
own checkers fed a broken B."""

import os

import pytest

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario
from apps.sync import scenarios_cdc
from apps.sync.engine import cdc
from apps.sync.engine.tables import Pair
from tests.engine import ScriptedControl, run_engine

SHORT = {"rows": 20, "rate": 4, "steps": 6}


class Kept:
    """The run's nodes, with the tear-down held back so a test can break B and check again."""

    def __init__(self, nodes):
        self.nodes = nodes

    def __getattr__(self, name):
        return getattr(self.nodes, name)

    def cleanup(self):
        self.nodes.close()


def run_dedicated(supervisor, name, params=None, seed=7, control=None, keep=False):
    scenario = get_scenario("sync", name)
    started = []

    def start_cluster(run_id, emit):
        nodes = DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())
        started.append(nodes)
        return Kept(nodes) if keep else nodes

    ctx, result, checks, events = run_engine(scenario, params=params, seed=seed, nodes=start_cluster, control=control)
    if keep:
        return ctx, result, {c["name"]: c for c in checks}, events, started[0]
    return ctx, result, {c["name"]: c for c in checks}, events


def held(checks):
    return {name: c["held"] for name, c in checks.items()}


def states(events, type_):
    return [e["data"] for e in events if e["kind"] in ("state", "metric") and (e["data"] or {}).get("type") == type_]


def test_cdc_binlog_passes_with_deletes_and_the_late_transaction_streamed_from_the_snapshot(supervisor):
    ctx, result, checks, events = run_dedicated(supervisor, "cdc-binlog", SHORT)
    assert held(checks) == dict.fromkeys(checks, True), checks
    assert len(result["snapshots"]) == 1 and result["purged"] == []
    applied = result["applied"]
    assert applied["inserts"] and applied["updates"] and applied["deletes"]
    # The late transaction's rows came through the binlog, not the snapshot: its commit is in B.
    late = next(op for op in ctx.history.completed() if op["f"] == "late" and op["type"] == "ok")
    late_ids = {w["id"] for w in late["value"]["writes"]}
    landed = {e["data"]["id"] for e in events if e["kind"] == "state" and (e["data"] or {}).get("by") == "cdc"}
    assert late_ids <= landed
    # The tape shows the binlog events read; the offsets end where the reader did, stored in B.
    assert {t["event"] for t in states(events, "tape")} >= {"WriteRowsEvent", "UpdateRowsEvent", "XidEvent"}
    last = states(events, "offsets")[-1]
    assert last["committed"] == last["reader"] == result["offset"]
    assert any(e["kind"] == "metric" and e["data"]["name"] == "lag_ms" for e in events)


def test_the_target_killed_mid_stream_is_restarted_and_streaming_resumes_from_the_offset_in_b(supervisor):
    control = ScriptedControl([{"action": "fault", "kind": "kill", "target": "db2"}])
    ctx, result, checks, events = run_dedicated(supervisor, "cdc-binlog", SHORT, control=control)
    faults = [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]
    assert faults[0] == ("kill", "db2") and ("restart", "db2") in faults
    assert result["failed_steps"] >= 1
    assert held(checks) == dict.fromkeys(checks, True), checks


def test_the_target_cut_off_is_healed_before_the_catch_up_and_b_still_equals_a(supervisor):
    control = ScriptedControl([{"action": "fault", "kind": "partition", "target": "db2"}])
    ctx, result, checks, events = run_dedicated(supervisor, "cdc-binlog", {**SHORT, "steps": 3}, control=control)
    faults = [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]
    assert faults == [("partition", "db2"), ("heal", "db2")]
    assert result["failed_steps"] >= 1
    assert held(checks) == dict.fromkeys(checks, True), checks


def test_schema_change_maps_rows_with_the_schema_in_force_and_b_gets_the_column(supervisor):
    ctx, result, checks, events = run_dedicated(supervisor, "schema-change", SHORT)
    assert held(checks) == dict.fromkeys(checks, True), checks
    assert result["columns"][-1] == cdc.ADDED_COLUMN and result["applied"]["ddl"] == 1
    tape = states(events, "tape")
    alter = next(i for i, t in enumerate(tape) if t["op"] == "ddl")
    # Row events on both sides of the ALTER: some decoded without the column, some with it.
    assert any(t["event"] == "WriteRowsEvent" for t in tape[:alter])
    assert any(t["event"] == "UpdateRowsEvent" for t in tape[alter:])


def test_the_alter_button_runs_the_alter_once(supervisor):
    control = ScriptedControl([{"action": "fault", "kind": "alter", "target": "db1"}])
    ctx, result, checks, events = run_dedicated(supervisor, "schema-change", SHORT, control=control)
    alters = [e for e in events if e["kind"] == "cmd" and e["data"]["command"] == cdc.ALTER]
    assert len(alters) == 1 and alters[0]["data"]["ok"]
    assert [e["data"]["kind"] for e in events if e["kind"] == "fault"] == ["alter"]
    assert held(checks) == dict.fromkeys(checks, True), checks


def test_binlog_purged_gets_1236_says_so_and_snapshots_again_instead_of_skipping(supervisor):
    ctx, result, checks, events = run_dedicated(supervisor, "binlog-purged", SHORT)
    assert held(checks) == dict.fromkeys(checks, True), checks
    (purged,) = result["purged"]
    assert purged["error"].startswith("1236: ")
    assert [s["why"] for s in result["snapshots"]] == ["the first snapshot", "a new snapshot after 1236"]
    # The second snapshot starts in a binlog file the source still has, after the purge.
    (purge,) = states(events, "purge")
    assert result["snapshots"][1]["position"]["file"] >= purge["begins"]["file"] > purged["position"]["file"]


def test_binlog_purged_refuses_fewer_than_three_steps_with_a_message():
    clean, errors = get_scenario("sync", "binlog-purged").validate({"steps": 2})
    assert errors == {"steps": ["must be at least 3: the reader goes down, the binlog is purged, it comes back"]}


@pytest.fixture(scope="module")
def kept_run(supervisor):
    """A schema-change run whose servers are left up, for the checkers to be fed a broken B."""
    ctx, result, checks, events, nodes = run_dedicated(supervisor, "schema-change", SHORT, keep=True)
    assert held(checks) == dict.fromkeys(checks, True), checks
    yield ctx, result
    nodes.close()
    supervisor.down(nodes.cluster.name, missing_ok=True)  # the run's recorder is closed: no events


def on_b(ctx, *statements):
    conn = Pair(ctx.nodes).target()
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def test_the_added_column_check_fails_when_b_holds_another_value(kept_run):
    ctx, result = kept_run
    on_b(ctx, f"UPDATE b SET {cdc.ADDED_COLUMN} = 'stale' ORDER BY id LIMIT 1")
    check = scenarios_cdc.added_column(ctx, result)
    assert check.held is False and check.evidence["different"] == 1
    assert check.evidence["keys"][0]["B"] == "stale"
    assert check.evidence["summary"].startswith(f"1 of {check.evidence['rows']} rows hold another note")


def test_the_offset_check_fails_when_b_keeps_an_offset_in_a_purged_binlog(kept_run):
    ctx, result = kept_run
    on_b(ctx, f"UPDATE {cdc.OFFSETS} SET file = 'binlog.000000' WHERE name = 'committed'")
    check = scenarios_cdc.offset_on_the_source(ctx, result)
    assert check.held is False and check.evidence["committed"]["file"] == "binlog.000000"
    assert "a binlog the source no longer has" in check.evidence["summary"]
