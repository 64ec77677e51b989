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


class FaultAtBoundary(ScriptedControl):
    """Presses one fault button as the run reaches step boundary `n`."""

    def __init__(self, n, command):
        super().__init__()
        self.n, self.command = n, command

    def poll(self):
        self.seen_boundaries += 1
        return [self.command] if self.seen_boundaries == self.n else []


def run_3pc(name, boundary, command, **params):
    # Boundaries: 1 after set-up; for the first transfer 2 after CANCOMMIT, 3 after the PRECOMMIT to
    # p1, 4 after the one to p2. Every transfer spans p1 and p2 (no local ones).
    params = {"transfers": 2, "local_percent": 0, "agent_timeout_ms": 300, **params}
    control = FaultAtBoundary(boundary, command)
    ctx, result, checks, events = run_engine(
        get_scenario("transactions", name), lab_node_urls(), params, control=control
    )
    return ctx, result, {c["name"]: c for c in checks}, events


def test_the_3pc_scenarios_have_crash_partition_and_heal_buttons():
    for name in ("3pc-coordinator-crash", "3pc-partition"):
        scenario = get_scenario("transactions", name)
        assert (
            scenario.fault("crash", "coordinator")
            and scenario.fault("partition", "p2")
            and scenario.fault("heal", "p2")
        )


def test_crashing_the_3pc_coordinator_from_the_page_blocks_no_one():
    # 3pc-partition's own fault is scheduled for the second transfer; the button crashes the first.
    ctx, result, checks, events = run_3pc("3pc-partition", 3, CRASH, crash_transfer=2)
    first = result["transfers"][0]["gtrid"]
    assert [(e["to"], e["data"]["kind"]) for e in events if e["kind"] == "fault"] == [("coordinator", "crash")]
    states = [e["data"]["3pc"] for e in events if e["kind"] == "state" and e["data"].get("gtrid") == first]
    assert states.count("committed on timeout") == 2
    assert result["after_crash"]["error"] is None
    assert verdict_of(list(checks.values())) == "pass"


def test_partitioning_a_pre_committed_participant_from_the_page_splits_the_transaction():
    # The coordinator's own crash is scheduled for the second transfer; in the first, p1 is cut off
    # right after its PRECOMMIT: it commits on its timeout while the coordinator aborts p2.
    ctx, result, checks, events = run_3pc(
        "3pc-coordinator-crash", 3, {**CRASH, "kind": "partition", "target": "p1"}, crash_transfer=2
    )
    first = result["transfers"][0]["gtrid"]
    faults = [e for e in events if e["kind"] == "fault"]
    assert [(e["to"], e["data"]["kind"]) for e in faults] == [("p1", "partition")]
    # The command log says where the partition is: in the engine's message layer, not the network.
    assert faults[0]["data"]["effect"].startswith("simulated in the engine")
    assert checks["atomicity"]["evidence"]["broken"] == [
        {"gtrid": first, "branches": {"p1": "committed", "p2": "rolled back"}}
    ]
    assert verdict_of(list(checks.values())) == "fail"
