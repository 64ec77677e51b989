"""The shared-node sync scenarios on the real MariaDB: the naive loop and the watermark poller fail
the way they must (and the checkers say which keys), checksum verification and repair passes."""

import random

import pytest

from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from apps.sync.engine.checksum import chunk_bounds, differing_chunks
from apps.sync.engine.tables import Pair, create_tables, read_rows
from apps.sync.engine.workload import Workload
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine


def run(name, params=None, seed=7, control=None):
    scenario = get_scenario("sync", name)
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params, seed=seed, control=control)
    return ctx, result, {c["name"]: c for c in checks}, events


def held(checks):
    return {name: c["held"] for name, c in checks.items()}


def acknowledged(ctx, f):
    return [op["value"] for op in ctx.history.completed(f) if op["type"] == "ok"]


def test_naive_latest_misses_the_rows_inserted_between_two_looks():
    ctx, result, checks, _ = run("naive-latest")
    assert held(checks)["b_equals_a"] is False and held(checks)["acknowledged_writes"] is False
    evidence = checks["b_equals_a"]["evidence"]
    missing = [m["id"] for m in evidence["missing"]]
    assert evidence["missing_in_B"] > result["copied"]  # it copied a row per look, far fewer than A has
    assert evidence["summary"].startswith(f"B is missing {evidence['missing_in_B']} rows, e.g. id ")
    # The missing keys are rows A acknowledged; of the load, only its newest row was ever seen.
    (load,) = acknowledged(ctx, "load")
    inserted = {v["id"] for v in acknowledged(ctx, "insert")}
    assert set(missing) <= set(range(load["first"], load["last"] + 1)) | inserted
    assert evidence["missing_in_B"] >= load["rows"] - 1


def test_incremental_timestamp_never_sees_the_deletes_nor_the_late_transaction():
    ctx, result, checks, events = run("incremental-timestamp")
    assert held(checks) == {
        "b_equals_a": False,
        "no_duplicate_keys": True,
        "acknowledged_writes": False,
        "per_key_order": False,
    }
    evidence = checks["acknowledged_writes"]["evidence"]
    (late,) = acknowledged(ctx, "late")
    # Every lost write is the late transaction's: stamped with its start, behind the watermark.
    assert {w["id"] for w in evidence["lost_writes"]} == {w["id"] for w in late["writes"]}
    assert all(w["write"]["late"] for w in evidence["lost_writes"])
    # Every row A deleted is still in B (a delete leaves nothing to poll).
    deleted = {d["id"] for d in acknowledged(ctx, "delete")}
    assert deleted and {k["id"] for k in evidence["rows_B_still_has"]} == deleted
    assert "of them the late transaction's" in evidence["summary"] and "B still has" in evidence["summary"]
    marks = [e["data"]["value"] for e in events if e["kind"] == "state" and e["data"].get("type") == "watermark"]
    assert marks == sorted(marks) and result["watermark"] == marks[-1]


def drawn_chunks(events):
    return [e["data"] for e in events if e["kind"] == "state" and e["data"].get("type") == "chunk"]


def test_checksum_repair_compares_and_repairs_only_the_chunks_that_drifted():
    ctx, result, checks, events = run("checksum-repair", {"rows": 100, "rate": 0, "steps": 6, "chunk": 10})
    assert held(checks) == dict.fromkeys(checks, True), checks
    assert len(result["drifts"]) == 2  # the scenario's own drift steps
    drifted = sum(len(d["changed"]) + len(d["deleted"]) + len(d["added"]) for d in result["drifts"])
    # No workload writes but the long transaction's: every other row repaired is one B drifted on.
    (late,) = acknowledged(ctx, "late")
    assert result["rows_upserted"] + result["rows_deleted"] == drifted + len(late["writes"])
    states = [(c["i"], c["state"]) for c in drawn_chunks(events)]
    differ = [i for i, s in states if s == "differ"]
    repaired = result["rows_upserted"] + result["rows_deleted"]
    assert 0 < len(differ) <= repaired and result["chunks_compared"] == len(differ)
    assert [i for i, s in states if s == "repaired"] == differ
    listed = {r["id"] for c in drawn_chunks(events) if c["state"] == "repaired" for r in c["rows"]}
    assert {id for d in result["drifts"] for id in d["changed"] + d["deleted"] + d["added"]} <= listed
    assert result["chunks_checked"] == sum(1 for _, s in states if s == "checking")
    assert len(differ) * 4 < result["chunks_checked"]  # most chunks were equal: fingerprinted, never read
    # Only the differing chunks were read row by row.
    reads = [e["label"] for e in events if e["kind"] == "cmd" and e["label"].startswith("SELECT * FROM b WHERE")]
    assert len(reads) == len(differ)


def test_checksum_repair_passes_while_the_workload_writes_and_the_drift_button_is_pressed():
    button = {"action": "fault", "kind": "drift", "target": "B", "by": "charlie"}
    ctx, result, checks, events = run("checksum-repair", control=ScriptedControl([button]))
    assert held(checks) == dict.fromkeys(checks, True), checks
    (fault,) = [e for e in events if e["kind"] == "fault"]
    assert (fault["actor"], fault["to"], fault["data"]["kind"]) == ("charlie", "B", "drift")
    assert len(result["drifts"]) == 3 and fault["data"]["added"] == result["drifts"][0]["added"]


@pytest.fixture
def pair():
    run_id = random.randrange(10**8, 10**9)
    recorder = Recorder(run_id, [ListSink()])
    nodes = SharedNodes(run_id, **lab_node_urls())
    params = get_scenario("sync", "checksum-repair").validate({})[0]
    ctx = RunContext(run_id=run_id, params=params, seed=3, recorder=recorder, nodes=nodes)
    pair = Pair(nodes)
    create_tables(pair)
    workload = Workload(ctx, pair, random.Random(3))
    workload.load(250)
    source, target = pair.source(), pair.target()
    with target.cursor() as cur:
        cur.executemany(
            "INSERT INTO b (id, bkey, value, version, updated_at) VALUES (%s, %s, %s, %s, %s)", read_rows(source, "A")
        )
    yield source, target
    workload.close()
    nodes.cleanup()
    recorder.close()


def test_the_verification_alone_names_exactly_the_chunks_that_differ(pair):
    source, target = pair
    assert differing_chunks(source, target, 50) == []
    with target.cursor() as cur:
        cur.execute("UPDATE b SET value = 'drifted' WHERE id = 60")
        cur.execute("DELETE FROM b WHERE id = 201")
        cur.execute(
            "INSERT INTO b SELECT id + 100000, CONCAT(bkey, 'x'), value, version, updated_at FROM b WHERE id = 7"
        )
    found = differing_chunks(source, target, 50)
    assert [(c.lo, c.hi) for c in found] == [(51, 101), (201, 251), (251, 100008)]
    assert found[1].a[0] == found[1].b[0] + 1  # the chunk B lost a row of counts one fewer


def test_chunks_cover_bs_strays_below_and_above_as_one_chunk_each():
    assert chunk_bounds((1, 26), (1, 26), 10) == [(1, 11), (11, 21), (21, 26)]
    assert chunk_bounds((5, 15), (-3, 10**9), 10) == [(-3, 5), (5, 15), (15, 10**9)]
    assert chunk_bounds((0, 0), (4, 9), 10) == [(4, 9)]
    assert chunk_bounds((0, 0), (0, 0), 10) == []
