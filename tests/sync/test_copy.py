"""The chunked full copy on two dedicated MariaDB servers: retried with exponential backoff and full
jitter when the target's connections are killed, a plain INSERT retried after a lost reply writes a
chunk twice, an upsert retried after the same lost reply lands once, and a target a user takes down
is brought back so that the copy finishes. The same for the load-data writer (chunks streamed by
LOAD DATA LOCAL INFILE … REPLACE, several at once), and its lines keep any value intact."""

import os
import random

import pytest

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from apps.sync.engine.copy import ChunkCopy, SeededJitter
from apps.sync.engine.tables import Pair, create_tables, read_rows
from apps.sync.engine.workload import bkey_of
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine

# With the default parameters (40 rows, chunks of 10) the fault strikes the middle chunk, ids 21-30.
STRUCK = range(21, 31)


def run_dedicated(supervisor, name, params=None, seed=7, control=None):
    scenario = get_scenario("sync", name)

    def start_cluster(run_id, emit):
        return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

    ctx, result, checks, events = run_engine(scenario, params=params, seed=seed, nodes=start_cluster, control=control)
    return result, {c["name"]: c for c in checks}, events


def held(checks):
    return {name: c["held"] for name, c in checks.items()}


def retries(events):
    return [e["data"] for e in events if e["kind"] == "state" and e["data"].get("type") == "retry"]


def faults(events):
    return [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]


def first_b_writes(events):
    """{id: op} of the first write each id got in B."""
    first = {}
    for e in events:
        data = e.get("data") or {}
        if e["kind"] == "state" and data.get("type") == "row" and data["table"] == "B":
            first.setdefault(data["id"], data["op"])
    return first


def test_it_copies_a_into_b_retrying_a_chunk_whose_connection_was_killed_with_growing_backoff(supervisor):
    result, checks, events = run_dedicated(supervisor, "full-copy")

    assert held(checks) == dict.fromkeys(checks, True), checks
    assert faults(events) == [("kill-connections", "db2")] * 3
    commits = [e["data"]["ok"] for e in events if e["kind"] == "cmd" and e["label"] == "COMMIT chunk 2"]
    assert commits[:4] == [False, False, False, True]  # three rolled back, the fourth try lands
    tried = retries(events)
    assert [(r["what"], r["attempt"]) for r in tried] == [("chunk 2", 1), ("chunk 2", 2), ("chunk 2", 3)]
    assert all("Lost connection" in r["error"] for r in tried)
    # Full jitter: each wait drawn from [0, cap], and the cap doubles from one retry to the next.
    assert [r["cap_ms"] for r in tried] == [50.0, 100.0, 200.0]
    assert all(0 <= r["wait_ms"] <= r["cap_ms"] for r in tried)
    assert result["retries"] == [{k: r[k] for k in ("what", "attempt", "wait_ms", "cap_ms")} for r in tried]


def test_the_backoff_window_doubles_up_to_its_largest_and_a_seed_replays_the_waits():
    def waits(seed):
        wait = SeededJitter(random.Random(seed), multiplier=0.05, max=1.0)

        class Attempt:
            def __init__(self, n):
                self.attempt_number = n

        return [(wait.cap(n), wait(Attempt(n))) for n in range(1, 9)]

    drawn = waits(3)
    assert [cap for cap, _ in drawn] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert all(0 <= w <= cap for cap, w in drawn)
    assert drawn == waits(3)
    assert drawn != waits(4)


def test_a_plain_insert_retried_after_its_commit_reply_was_lost_duplicates_the_chunks_business_keys(supervisor):
    result, checks, events = run_dedicated(supervisor, "retry-duplicates")

    assert faults(events) == [("lose-reply", "db2")]
    commits = [e["data"]["ok"] for e in events if e["kind"] == "cmd" and e["label"] == "COMMIT chunk 2"]
    assert commits[:2] == [False, True]  # the copier was told the first COMMIT failed
    duplicated = checks["no_duplicate_keys"]
    assert duplicated["held"] is False
    assert duplicated["evidence"]["keys"] == [{"bkey": bkey_of(id), "rows": 2} for id in STRUCK]
    assert checks["b_equals_a"]["held"] is False
    assert [c["id"] for c in checks["b_equals_a"]["evidence"]["changed"]] == list(STRUCK)
    # Nothing else is wrong: every acknowledged insert is there, each at A's version.
    assert checks["acknowledged_writes"]["held"] and checks["per_key_order"]["held"]


def test_an_upsert_retried_after_the_same_lost_reply_lands_once(supervisor):
    result, checks, events = run_dedicated(supervisor, "retry-idempotent")

    assert held(checks) == dict.fromkeys(checks, True), checks
    assert faults(events) == [("lose-reply", "db2")]
    assert [(r["what"], r["attempt"]) for r in retries(events)] == [("chunk 2", 1)]
    first = first_b_writes(events)
    # The retry found the struck chunk's rows already in B: the COMMIT it was not told of had landed.
    assert {first[id] for id in STRUCK} == {"upsert"}
    assert {first[id] for id in range(1, 21)} == {"insert"}


def test_a_target_a_user_kills_mid_copy_is_restarted_and_the_copy_still_converges(supervisor):
    kill = ScriptedControl([{"action": "fault", "kind": "kill", "target": "db2", "by": "alice"}])
    result, checks, events = run_dedicated(supervisor, "full-copy", {"steps": 2, "attempts": 2}, control=kill)

    assert faults(events)[0] == ("kill", "db2")
    assert ("restart", "db2") in faults(events)
    assert result["failed_passes"] >= 1  # while it was down, passes gave up after their attempts
    assert result["convergence_lag_ms"] is not None
    assert held(checks) == dict.fromkeys(checks, True), checks


def cmds(events, prefix):
    return [e for e in events if e["kind"] == "cmd" and e["label"].startswith(prefix)]


def test_a_chunk_streamed_twice_after_its_commit_reply_was_lost_lands_once(supervisor):
    result, checks, events = run_dedicated(supervisor, "retry-idempotent", {"writer": "load-data"})

    assert held(checks) == dict.fromkeys(checks, True), checks
    assert faults(events) == [("lose-reply", "db2")]
    assert [(r["what"], r["attempt"]) for r in retries(events)] == [("chunk 2", 1)]
    # The struck chunk went to B twice, and the second time found its rows already there.
    struck = cmds(events, "LOAD DATA LOCAL INFILE … REPLACE 10 rows INTO b (ids 21–30)")
    assert [e["data"]["ok"] for e in struck][:2] == [True, True]
    assert {first_b_writes(events)[id] for id in STRUCK} == {"upsert"}
    assert result["mode"] == "load-data"


def test_chunks_streamed_several_at_once_are_retried_and_converge(supervisor):
    params = {"writer": "load-data", "parallel": 3}
    result, checks, events = run_dedicated(supervisor, "full-copy", params)

    assert held(checks) == dict.fromkeys(checks, True), checks
    assert faults(events) == [("kill-connections", "db2")] * 3
    # The chunks in flight beside it when the connections were killed are retried too.
    struck = [r["attempt"] for r in retries(events) if r["what"] == "chunk 2"]
    assert struck == [1, 2, 3]
    # One statement per chunk, not per row: the first copy streams A's 40 rows as 4 chunks (the
    # struck one 4 times, its first three COMMITs killed).
    start = events[: next(i for i, e in enumerate(events) if (e.get("data") or {}).get("phase") == "workload")]
    spans = [e["label"].rsplit("(", 1)[1] for e in cmds(start, "LOAD DATA")]
    assert set(spans) == {"ids 1–10)", "ids 11–20)", "ids 21–30)", "ids 31–40)"}
    assert spans.count("ids 21–30)") == 4
    assert not cmds(events, "INSERT … ON DUPLICATE KEY UPDATE")
    assert result["parallel"] == 3


# Values a LOAD DATA line could mistake for its own field or line ends, or for its escapes and NULL.
AWKWARD = ["tab\there", "new\nline", "back\\slash", "\\N", "ends with \\", "\\t is not a tab", "plain"]


@pytest.fixture
def shared_copy():
    """A run on the shared MariaDB: A (in the run's src database) with awkward values, B empty."""
    run_id = random.randrange(10**8, 10**9)
    sink = ListSink()
    recorder = Recorder(run_id, [sink])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params={}, seed=7, recorder=recorder, nodes=nodes)
    ctx.events = lambda: (recorder.flush(), sink.events)[1]
    pair = Pair(nodes)
    create_tables(pair)
    source = pair.source()
    with source.cursor() as cur:
        statement = "INSERT INTO a (bkey, value, version, updated_at) VALUES (%s, %s, 1, NOW(6))"
        cur.executemany(statement, [(f"k{i}", value) for i, value in enumerate(AWKWARD)])
    yield ctx, pair, source
    source.close()
    nodes.cleanup()
    recorder.close()


def test_streamed_chunks_carry_any_value_and_a_second_pass_brings_updates_and_deletes(shared_copy):
    ctx, pair, source = shared_copy
    copier = ChunkCopy(ctx, pair, chunk=2, load_data=True, parallel=2)
    target = pair.target()
    try:
        assert copier.copy_pass()
        assert read_rows(target, "B") == read_rows(source, "A")
        # The page is shown the values B got, not their escaped form.
        shown = [e["data"]["value"] for e in ctx.events() if (e.get("data") or {}).get("table") == "B"]
        assert sorted(shown) == sorted(AWKWARD)
        with source.cursor() as cur:
            cur.execute("UPDATE a SET value = %s, version = 2 WHERE bkey = 'k1'", ("now\ta\ttab",))
            cur.execute("DELETE FROM a WHERE bkey IN ('k2', 'k6')")
        assert copier.copy_pass()
        assert read_rows(target, "B") == read_rows(source, "A")
        assert copier.result()["rows_deleted"] == 2
    finally:
        copier.close()
        target.close()


def test_the_plain_insert_copy_refuses_the_load_data_writer_and_parallel_chunks(shared_copy):
    ctx, pair, _ = shared_copy
    for options in ({"load_data": True}, {"parallel": 2}):
        with pytest.raises(ValueError, match="need the idempotent copy"):
            ChunkCopy(ctx, pair, chunk=2, idempotent=False, **options)


@pytest.mark.parametrize("name", ["full-copy", "retry-duplicates", "retry-idempotent"])
@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"chunk": 0}, "chunk", "must be at least 1"),
        ({"rows": 0}, "rows", "must be at least 1"),
        ({"rate": -1}, "rate", "must be at least 0"),
        ({"attempts": 0}, "attempts", "must be at least 1"),
    ],
)
def test_bad_parameters_are_refused_with_a_message_per_field(name, params, field, message):
    _, errors = get_scenario("sync", name).validate(params)
    assert errors == {field: [message]}


def test_a_target_a_user_cuts_off_is_healed_before_the_catch_up(supervisor):
    cut = ScriptedControl([{"action": "fault", "kind": "partition", "target": "db2", "by": "alice"}])
    result, checks, events = run_dedicated(supervisor, "retry-idempotent", {"steps": 1, "attempts": 1}, control=cut)

    assert ("partition", "db2") in faults(events) and faults(events)[-1] == ("heal", "db2")
    assert result["failed_passes"] >= 1
    assert held(checks) == dict.fromkeys(checks, True), checks


@pytest.mark.parametrize("name", ["full-copy", "retry-idempotent"])
@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"parallel": 0}, "parallel", "must be at least 1"),
        ({"writer": "fast"}, "writer", "must be one of upsert, load-data"),
    ],
)
def test_bad_writer_parameters_are_refused_with_a_message_per_field(name, params, field, message):
    _, errors = get_scenario("sync", name).validate(params)
    assert errors == {field: [message]}
