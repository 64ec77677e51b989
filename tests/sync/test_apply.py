"""The CDC applier as a process of its own, on two dedicated MariaDB servers: SIGKILLed around its
offset (by itself on its crash schedule, or by the fault button) and started again, and several
appliers at once, with and without key affinity."""

import os

import pytest

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario, verdict_of
from apps.sync.engine.tables import Pair
from tests.conftest import wait_until
from tests.engine import ScriptedControl, run_engine

SHORT = {"rows": 20, "rate": 3, "steps": 8}


def run_dedicated(supervisor, name, params=None, seed=7, control=None, started=None):
    """The scenario on two servers started for it; `started(nodes)` is told of them."""
    scenario = get_scenario("sync", name)

    def start_cluster(run_id, emit):
        nodes = DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())
        if started:
            started(nodes)
        return nodes

    ctx, result, checks, events = run_engine(scenario, params=params, seed=seed, nodes=start_cluster, control=control)
    assert verdict_of(checks) == scenario.expected, checks
    return result, {c["name"]: c for c in checks}, events


def held(checks):
    return {name: c["held"] for name, c in checks.items()}


def applier_states(events):
    return [e["data"] for e in events if e["kind"] == "state" and (e["data"] or {}).get("type") == "applier"]


def test_it_replays_after_each_crash_between_the_rows_and_the_offset_and_b_still_equals_a(supervisor):
    result, checks, events = run_dedicated(supervisor, "cdc-crash-replay", SHORT)
    assert result["self_kills"] == 3
    killed = [s for s in applier_states(events) if s["state"] == "killed"]
    assert [s["signal"] for s in killed] == ["SIGKILL"] * 3
    started = {s["pid"] for s in applier_states(events) if s["state"] == "started"}
    assert len(started) == 4  # a new process each time
    for pid in started:  # and none outlived the run
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # Each crash fell after B's commit and before the offset's: the next life applied that one again.
    assert result["replayed_transactions"] == 3 and result["gaps"] == 0
    assert held(checks) == dict.fromkeys(checks, True), checks


def test_it_loses_the_transactions_whose_offset_was_committed_before_the_crash(supervisor):
    result, checks, events = run_dedicated(supervisor, "cdc-offset-first")
    assert result["self_kills"] == 4
    assert result["replayed_transactions"] == 0 and result["gaps"] == 4
    assert checks["b_equals_a"]["held"] is False
    lost = checks["acknowledged_writes"]
    assert lost["held"] is False and lost["evidence"]["lost"] >= 1


def test_it_neither_loses_nor_replays_when_the_offset_commits_with_the_rows(supervisor):
    result, checks, events = run_dedicated(supervisor, "cdc-atomic-offset", SHORT)
    assert result["self_kills"] == 3
    assert result["replayed_transactions"] == 0 and result["gaps"] == 0
    assert held(checks) == dict.fromkeys(checks, True), checks


def test_the_fault_button_sigkills_the_running_applier_and_it_is_started_again(supervisor):
    control = ScriptedControl([{"action": "fault", "kind": "kill", "target": "applier", "by": "charlie"}])
    params = {**SHORT, "kills": 0}
    result, checks, events = run_dedicated(supervisor, "cdc-crash-replay", params, control=control)
    fault = next(e for e in events if e["kind"] == "fault")
    assert (fault["to"], fault["data"]["kind"], fault["data"]["by"]) == ("applier", "kill", "charlie")
    states = applier_states(events)
    killed = [s for s in states if s["state"] == "killed"]
    assert [(s["pid"], s["signal"]) for s in killed] == [(fault["data"]["pid"], "SIGKILL")]
    assert "outside" in killed[0]["cause"]
    started = [s["pid"] for s in states if s["state"] == "started"]
    assert len(started) == 2 and started[0] == fault["data"]["pid"] != started[1]
    assert result["outside_kills"] == 1
    assert held(checks) == dict.fromkeys(checks, True), checks


def test_parallel_appliers_without_key_affinity_let_an_older_update_overwrite_a_newer_one(supervisor):
    result, checks, events = run_dedicated(supervisor, "parallel-apply")
    order = checks["per_key_order"]
    assert order["held"] is False
    assert order["evidence"]["B_older"] >= 1


def test_parallel_appliers_partitioned_by_key_keep_each_keys_order(supervisor):
    result, checks, events = run_dedicated(supervisor, "parallel-apply-keyed")
    workers = {e["actor"] for e in events if e["kind"] == "cmd" and e["actor"].startswith("applier-w")}
    assert workers == {"applier-w1", "applier-w2", "applier-w3"}  # the work was spread
    assert held(checks) == dict.fromkeys(checks, True), checks


@pytest.mark.parametrize(
    "name, params, field, message",
    [
        ("cdc-crash-replay", {"rows": 0}, "rows", "must be at least 1"),
        ("cdc-offset-first", {"rate": -1}, "rate", "must be at least 0"),
        ("cdc-atomic-offset", {"kills": -1}, "kills", "must be at least 0"),
        ("parallel-apply", {"workers": 1}, "workers", "must be at least 2"),
        ("parallel-apply-keyed", {"skew_ms": "slow"}, "skew_ms", "must be an integer"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(name, params, field, message):
    clean, errors = get_scenario("sync", name).validate(params)
    assert errors == {field: [message]}


class PauseAndWriteToA:
    """Pauses the run at its third boundary and, while it is paused, inserts a row into A as
    another client of the source would; then resumes."""

    def __init__(self):
        self.nodes = None
        self.polls = 0
        self.seen_in_b = None

    def poll(self):
        self.polls += 1
        return [{"action": "pause"}] if self.polls == 3 else []

    def wait(self, timeout):
        pair = Pair(self.nodes)
        with pair.source().cursor() as cur:
            cur.execute(
                "INSERT INTO a (bkey, value, version, updated_at) VALUES ('outside', 'while paused', 1, NOW(6))"
            )

        def in_b():
            with pair.target().cursor() as cur:
                cur.execute("SELECT value FROM b WHERE bkey = 'outside'")
                return cur.fetchone()

        self.seen_in_b = wait_until(in_b, 30, "the row written while paused to reach B")[0]
        return {"action": "resume"}


def test_the_applier_streams_while_the_run_is_paused(supervisor):
    control = PauseAndWriteToA()
    params = {**SHORT, "kills": 0}
    result, checks, events = run_dedicated(
        supervisor, "cdc-atomic-offset", params, control=control, started=lambda n: setattr(control, "nodes", n)
    )
    assert control.seen_in_b == "while paused"  # B got it before the run went on
    assert held(checks) == dict.fromkeys(checks, True), checks
