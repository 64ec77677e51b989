"""2PC on dedicated MariaDB servers: a participant's server SIGKILLed after it prepared, and chaos."""

import os

import pytest

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario
from tests.engine import run_engine


def run_dedicated(supervisor, name, params=None, seed=7):
    """The engine on a cluster started for the run, as the runner does it, minus Django."""
    scenario = get_scenario("transactions", name)

    def start_cluster(run_id, emit):
        return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

    ctx, result, checks, events = run_engine(scenario, params=params, seed=seed, nodes=start_cluster)
    return ctx, result, {c["name"]: c for c in checks}, events


def test_a_participant_killed_after_preparing_keeps_its_branch_and_recovery_commits_it(supervisor):
    ctx, result, checks, events = run_dedicated(supervisor, "2pc-participant-crash")
    victim = result["transfers"][0]
    killed = victim["participants"][-1]
    faults = [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]
    assert faults == [("kill", killed), ("restart", killed)]
    outcome = {op["value"]["gtrid"]: op for op in ctx.history.completed("transfer")}[victim["gtrid"]]
    assert outcome["type"] == "info"  # its COMMIT failed with the connection: the client cannot know
    # The branch survived the SIGKILL: after the restart, XA RECOVER listed it and recovery committed it.
    assert result["recovery"] == [{"participant": killed, "gtrid": victim["gtrid"], "action": "commit"}]
    assert {name: c["held"] for name, c in checks.items()} == dict.fromkeys(checks, True)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_chaos_passes_for_every_seed(supervisor, seed):
    ctx, result, checks, events = run_dedicated(supervisor, "2pc-chaos", {"transfers": 10}, seed=seed)
    assert result["schedule"] and len(result["recoveries"]) == len(result["schedule"])
    assert {name: c["held"] for name, c in checks.items()} == dict.fromkeys(checks, True), checks


def test_the_chaos_schedule_is_fixed_by_the_seed_and_uses_every_fault(supervisor):
    schedules = [run_dedicated(supervisor, "2pc-chaos", {"transfers": 10}, seed=4)[1]["schedule"] for _ in range(2)]
    assert schedules[0] == schedules[1]
    assert {fault for fault, _, _ in schedules[0].values()} == {"crash", "kill", "drop"}
