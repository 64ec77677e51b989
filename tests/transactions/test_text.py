"""A run that stops before its last transfers says why, in its own story."""

import pytest

from apps.runs.registry import get_scenario
from tests.conftest import lab_node_urls
from tests.engine import run_engine


def not_started(events):
    return [e for e in events if e["kind"] == "log" and e["data"].get("type") == "not_started"]


@pytest.mark.parametrize("name", ["2pc-coordinator-crash-before-decision", "3pc-coordinator-crash"])
def test_a_coordinator_crash_at_the_first_transfer_says_the_others_were_not_started(name):
    ctx, result, checks, events = run_engine(
        get_scenario("transactions", name), lab_node_urls(), {"transfers": 3, "crash_transfer": 1}
    )
    planned = [t["gtrid"] for t in result["transfers"]]
    [said] = not_started(events)
    assert said["data"]["transfers"] == planned[1:] == result["not_started"]
    assert said["data"]["crashed_during"] == planned[0]
    assert "crashed during transfer 1" in said["label"] and "remaining 2 transfers were not started" in said["label"]


def test_a_crash_at_the_last_transfer_leaves_nothing_unsaid_and_nothing_to_explain():
    ctx, result, checks, events = run_engine(
        get_scenario("transactions", "2pc-coordinator-crash-after-decision"),
        lab_node_urls(),
        {"transfers": 2, "crash_transfer": 2},
    )
    assert not_started(events) == []
    assert result["not_started"] == []
