"""The instructor's "crash the coordinator now" button during a live run: the coordinator stops at
its next step, and recovery leaves every invariant holding."""

from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine

CRASH = {"action": "fault", "kind": "crash", "target": "coordinator"}


class CrashAtBoundary(ScriptedControl):
    """Presses the crash button as the run reaches step boundary `n`."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def poll(self):
        self.seen_boundaries += 1
        return [CRASH] if self.seen_boundaries == self.n else []


def crash_happy_run_at(boundary):
    scenario = get_scenario("transactions", "2pc-happy")
    params = {"transfers": 3, "concurrency": 1, "local_percent": 0}
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params, control=CrashAtBoundary(boundary))
    return ctx, result, {c["name"]: c for c in checks}, events


def test_the_crash_button_is_a_fault_of_the_2pc_scenarios():
    for name in ("2pc-happy", "2pc-vote-no", "2pc-coordinator-crash-before-decision", "2pc-chaos"):
        assert get_scenario("transactions", name).fault("crash", "coordinator"), name


def test_crashing_the_coordinator_after_both_prepares_leaves_branches_in_doubt_until_recovery_rolls_back():
    # Boundaries: 1 after set-up; for the first transfer 2 begin, 3 and 4 after each branch's work,
    # 5 and 6 after each PREPARE. Pressed at 6, the crash comes with both branches prepared.
    ctx, result, checks, events = crash_happy_run_at(6)
    faults = [(e["actor"], e["to"], e["data"]["kind"]) for e in events if e["kind"] == "fault"]
    assert faults == [("instructor", "coordinator", "crash")]
    victim = result["transfers"][0]
    crash_log = [e for e in events if e["kind"] == "log" and e["label"].startswith("coordinator crashes")]
    assert [e["data"]["gtrid"] for e in crash_log] == [victim["gtrid"]]
    assert crash_log[0]["data"]["by_instructor"] is True
    # The later transfers never ran: the coordinator was gone.
    assert [op["value"]["gtrid"] for op in ctx.history.completed("transfer")] == [victim["gtrid"]]
    assert result["blocked"]["error"] == 1205
    assert sorted(a["participant"] for a in result["recovery"]) == victim["participants"]
    assert {a["action"] for a in result["recovery"]} == {"rollback"}
    assert verdict_of(list(checks.values())) == "pass"


def test_crashing_the_coordinator_during_the_work_needs_no_in_doubt_resolution():
    ctx, result, checks, events = crash_happy_run_at(3)
    assert [e["data"]["kind"] for e in events if e["kind"] == "fault"] == ["crash"]
    assert result["recovery"] == []  # the unprepared branch died with its connection
    first = result["transfers"][0]["gtrid"]
    states = [
        (e["actor"], e["data"]["state"]) for e in events if e["kind"] == "state" and e["data"].get("gtrid") == first
    ]
    assert states[-1] == (result["transfers"][0]["participants"][0], "ROLLED BACK")
    assert "blocked" not in result
    assert verdict_of(list(checks.values())) == "pass"


def test_a_crash_pressed_after_the_transfers_is_refused_with_a_message():
    scenario = get_scenario("transactions", "2pc-coordinator-crash-before-decision")

    class CrashAtTheEnd(ScriptedControl):
        def poll(self):
            self.seen_boundaries += 1
            # The scripted crash fires at boundary 7; the next boundary is after the transfers.
            return [CRASH] if self.seen_boundaries == 8 else []

    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), {}, control=CrashAtTheEnd())
    assert not [e for e in events if e["kind"] == "fault"]
    assert "fault crash failed: the coordinator is not running transfers any more" in [
        e["label"] for e in events if e["kind"] == "log"
    ]
    assert verdict_of(checks) == "pass"
