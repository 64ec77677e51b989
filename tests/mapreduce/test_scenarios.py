"""Every MapReduce scenario on two real Celery workers and the real lab Redis, with small inputs:
its verdict, and the events the run page is drawn from."""

import dataclasses
import json
import os
from collections import Counter, defaultdict

import pytest

from apps.mapreduce.engine import coordinator
from apps.mapreduce.tasks import CeleryDispatcher
from apps.runs.registry import Check, Invariant, Scenario, get_scenario
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine

SMALL = {"size_limit": 1_500_000, "maps": 4, "reduces": 2}


def run(name, **params):
    scenario = get_scenario("mapreduce", name)
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params={**SMALL, **params}, seed=11)
    verdicts = {c["name"]: c["held"] for c in checks}
    return result, checks, events, verdicts


def states(events, type_):
    return [e["data"] for e in events if e["kind"] == "state" and e["data"].get("type") == type_]


def phases(events):
    return [(e["data"]["name"], e["data"]["state"]) for e in events if e["kind"] == "phase"]


def assert_passed(checks):
    broken = [(c["name"], c["held"], c["evidence"]) for c in checks if c["held"] is not True]
    assert not broken, json.dumps(broken)


@pytest.mark.parametrize(
    "name, params",
    [
        ("wordcount", {}),
        ("inverted-index", {}),
        ("grep", {}),
        ("log-top-urls", {"size_limit": 800_000}),
    ],
)
def test_it_computes_each_job_as_its_sequential_reference_does(mapreduce_workers, name, params):
    result, checks, events, _ = run(name, **params)
    assert_passed(checks)
    assert [p for p in phases(events) if p[0] in ("split", "map", "reduce", "output", "check")] == [
        ("split", "begin"),
        ("split", "end"),
        ("map", "begin"),
        ("map", "end"),
        ("reduce", "begin"),
        ("reduce", "end"),
        ("output", "begin"),
        ("output", "end"),
        ("check", "begin"),
    ]
    splits = states(events, "split")
    assert [s["split"] for s in splits] == [0, 1, 2, 3]
    assert sum(s["records"] for s in splits) == states(events, "output")[0]["lines"]
    # Tasks go idle -> in progress -> completed, each on a worker named w1 or w2, with its host.
    final = {}
    for t in states(events, "task"):
        final[t["task"]] = t
    assert sorted(final) == ["m0", "m1", "m2", "m3", "r0", "r1"]
    for t in final.values():
        assert t["state"] == "completed" and t["worker"] in ("w1", "w2") and "@" in t["host"]
        assert t["start_ms"] <= t["end_ms"]
    # The partitions the panel fills add up to what the reducers read.
    shuffled = sum(p["records"] for p in states(events, "partition"))
    assert shuffled == checks[1]["evidence"]["rounds"][0]["records_shuffled"]
    output = states(events, "output")[0]
    assert output["job"] == result["job"] and output["keys"] == checks[0]["evidence"]["reference_keys"]
    values = [v for _, v in output["top"]]
    assert 0 < len(values) <= 20 and values == sorted(values, reverse=True)
    counters = {e["data"]["name"] for e in events if e["kind"] == "metric"}
    assert {"records_in", "records_out", "bytes_shuffled", "elapsed_ms"} <= counters
    # How many tasks ran at once is measured from the workers' clocks and shown, not judged.
    metrics = [e["data"] for e in events if e["kind"] == "metric"]
    peaks = {m["name"]: m["value"] for m in metrics if m["name"].startswith("peak_")}
    assert set(peaks) == {"peak_maps_running", "peak_reduces_running"} and all(1 <= n <= 2 for n in peaks.values())
    assert [c["name"] for c in checks] == ["output_matches_reference", "each_task_counted_once"]
    # The coordinator's Redis commands that change the job are in the command log, in one shape.
    commands = [e["data"] for e in events if e["kind"] == "cmd"]
    assert sum("RPUSH" in c["command"] for c in commands) == 4  # a split each
    commits = [c for c in commands if ":commit:" in c["command"] and c["command"].endswith(" NX")]
    assert len(commits) == len(final) and all(c["result"] is True for c in commits)
    assert all(set(c) == {"node", "command", "ok", "result", "ms", "error"} and c["ok"] for c in commands)


def test_it_shuffles_fewer_bytes_with_a_combiner_and_shows_both(mapreduce_workers):
    result, checks, events, _ = run("no-combiner")
    assert_passed(checks)
    (comparison,) = states(events, "comparison")
    with_it, without = (row["value"] for row in comparison["rows"])
    assert 0 < with_it < without
    metrics = {e["data"]["name"]: e["data"]["value"] for e in events if e["kind"] == "metric"}
    assert metrics["bytes_shuffled_no_combiner"] == without
    assert [r["label"] for r in result["rounds"]] == ["combiner on", "combiner off"]


def test_it_runs_backup_copies_of_a_stragglers_tasks_and_reports_both_times(mapreduce_workers):
    result, checks, events, _ = run("straggler", size_limit=300_000, maps=6, reduces=2)
    assert_passed(checks)
    slow = {w["worker"] for w in states(events, "worker") if w["state"] == "slow"}
    assert len(slow) == 1
    tasks = states(events, "task")
    assert not any(t["backup"] for t in tasks if t.get("round") == 1)
    backups = [t for t in tasks if t.get("round") == 2 and t["backup"]]
    assert backups and all(t["worker"] not in slow for t in backups)
    # Each backed-up task ends with one attempt completed and the other ignored.
    by_task = defaultdict(dict)
    for t in tasks:
        if t.get("round") == 2 and t["state"] in ("completed", "ignored"):
            by_task[t["task"]][t["attempt"]] = t["state"]
    for task in {t["task"] for t in backups}:
        assert sorted(by_task[task].values()) == ["completed", "ignored"], by_task[task]
    (comparison,) = states(events, "comparison")
    assert [r["label"] for r in comparison["rows"]] == ["backup tasks off", "backup tasks on"]
    metrics = {e["data"]["name"] for e in events if e["kind"] == "metric"}
    assert {"elapsed_ms_backup_off", "elapsed_ms_backup_on"} <= metrics


def with_commit_snapshot(name):
    """The scenario, plus a last invariant that copies the commit keys from the lab Redis (read
    before the run's clean-up drops them)."""
    scenario = get_scenario("mapreduce", name)
    commits = {}

    def snapshot(ctx, result):
        lab = ctx.nodes.redis()
        for rnd in result["rounds"]:
            for key in lab.scan_iter(match=rnd["base"] + ":commit:*"):
                commits[(rnd["index"], key.rsplit(":", 1)[1])] = int(lab.get(key))
        return Check(True)

    extra = Invariant("commit_snapshot", "copies the commit keys", snapshot)
    return dataclasses.replace(scenario, invariants=(*scenario.invariants, extra)), commits


def test_it_reruns_the_tasks_of_a_killed_worker_process_and_the_output_is_still_right(mapreduce_workers):
    scenario, commits = with_commit_snapshot("worker-crash")
    params = {**SMALL, "task_timeout_ms": 2000, "kill_percent": 30, "stall_percent": 0}
    _, result, checks, events = run_engine(scenario, lab_node_urls(), params=params, seed=11)
    assert_passed(checks)
    # Replayed from the events, each task's committed attempt is the one its commit key names.
    folded = {(1, t["task"]): t["attempt"] for t in states(events, "task") if t["state"] == "completed"}
    assert folded == commits and len(folded) == 6
    tasks = states(events, "task")
    failed = [t for t in tasks if t["state"] == "failed"]
    assert failed, "no attempt was killed"
    for f in failed:
        # The process really died: SIGKILLed, not a Python exception.
        with pytest.raises(ProcessLookupError):
            os.kill(f["pid"], 0)
        again = [t for t in tasks if t["task"] == f["task"] and t["attempt"] == 2 and t["state"] == "completed"]
        assert again, f"{f['task']} was not run again"
    dead = [w for w in states(events, "worker") if w["state"] == "dead"]
    assert {w["worker"] for w in dead} == {f["worker"] for f in failed}
    # The killed attempt wrote part of its output, but only committed attempts were read.
    rounds = checks[1]["evidence"]["rounds"][0]
    assert set(rounds["rerun"]) >= {f["task"] for f in failed}


class KillAtBoundary(ScriptedControl):
    """Presses the run page's "kill" on a worker as the run reaches step boundary `n`."""

    def __init__(self, n, worker):
        super().__init__()
        self.n, self.worker = n, worker

    def poll(self):
        self.seen_boundaries += 1
        if self.seen_boundaries == self.n:
            return [{"action": "fault", "kind": "kill", "target": self.worker}]
        return []


def test_an_instructor_kills_a_worker_from_the_page_and_its_task_runs_again(mapreduce_workers):
    # Boundary 1 sends the first wave (m0 to w1, m1 to w2); at 2, the first commit, w1 is busy or
    # about to be sent its next task: either way an attempt of w1's dies.
    scenario = get_scenario("mapreduce", "wordcount")
    assert scenario.fault("kill", "w2", {"workers": 2}) and not scenario.fault("kill", "w3", {"workers": 2})
    ctx, result, checks, events = run_engine(
        scenario, lab_node_urls(), params={**SMALL, "task_timeout_ms": 2000}, seed=11, control=KillAtBoundary(2, "w1")
    )
    # With w1 gone for a while, w2 may have run a whole phase alone: the job is still right.
    assert_passed(checks)
    faults = [e for e in events if e["kind"] == "fault"]
    assert [(e["to"], e["data"]["kind"]) for e in faults] == [("w1", "kill")]
    tasks = states(events, "task")
    failed = [t for t in tasks if t["state"] == "failed"]
    assert [t["worker"] for t in failed] == ["w1"]
    with pytest.raises(ProcessLookupError):  # the process really died
        os.kill(failed[0]["pid"], 0)
    again = [t for t in tasks if t["task"] == failed[0]["task"] and t["attempt"] == 2 and t["state"] == "completed"]
    assert again
    assert "w1" in {w["worker"] for w in states(events, "worker") if w["state"] == "dead"}


def test_a_run_slowed_down_to_watch_still_runs_its_tasks_side_by_side(mapreduce_workers):
    # At the lab page's pace the coordinator is held at every step boundary: a wave of tasks leaves
    # at one boundary, so the workers still run it together.
    scenario = get_scenario("mapreduce", "wordcount")
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params=SMALL, seed=11, speed=5)
    assert_passed(checks)


def test_a_stalled_attempt_times_out_is_rerun_and_its_late_output_is_ignored(mapreduce_workers):
    result, checks, events, _ = run("worker-crash", task_timeout_ms=1500, kill_percent=0, stall_percent=40)
    assert_passed(checks)
    tasks = states(events, "task")
    timed_out = [t for t in tasks if t["state"] == "timed_out"]
    assert timed_out
    for t in timed_out:
        ends = Counter(x["state"] for x in tasks if x["task"] == t["task"] and x["state"] in ("completed", "ignored"))
        assert ends == {"completed": 1, "ignored": 1}, ends
    assert any(w["state"] == "stalled" for w in states(events, "worker"))


def test_a_run_with_no_mapreduce_worker_errors_saying_how_to_start_them(mapreduce_workers):
    wordcount = get_scenario("mapreduce", "wordcount")
    nobody = Scenario(
        name="wordcount-elsewhere",
        title="",
        summary="",
        params=wordcount.params,
        engine=lambda ctx: coordinator.run(ctx, CeleryDispatcher(queue="mapreduce-nobody"), job_name="wordcount"),
    )
    with pytest.raises(coordinator.NoWorkersError, match=r"no MapReduce workers are running; start them with `celery"):
        run_engine(nobody, lab_node_urls(), params=SMALL)


def test_it_counts_the_words_of_an_uploaded_file(mapreduce_workers, settings, tmp_path):
    from apps.mapreduce import uploads

    settings.DISTLAB_UPLOAD_DIR = tmp_path
    text = "".join(f"line {i} of the upload, the end\n" for i in range(3000))
    token = uploads.save(None, "mine.txt", text.encode())["token"]
    result, checks, events, verdicts = run("wordcount", input="upload", upload=token, maps=3)
    assert verdicts["output_matches_reference"] is True, checks[0]
    assert verdicts["each_task_counted_once"] is True, checks[1]
    assert {s["source"] for s in states(events, "split")} == {"upload"}
    # 0 to 2999, and line, of, the, upload, end
    assert checks[0]["evidence"]["reference_keys"] == 3000 + 5
