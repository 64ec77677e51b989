"""Write-behind, write-through and a cache node down behind a circuit breaker, on a dedicated
MariaDB and a dedicated Redis node that is SIGKILLed, paused and restarted for real."""

import os

import pytest

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario, verdict_of
from tests.engine import run_engine


def run_dedicated(supervisor, name, params=None, seed=7, control=None):
    scenario = get_scenario("cache", name)

    def start_cluster(run_id, emit):
        return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

    ctx, result, checks, events = run_engine(scenario, params=params, seed=seed, nodes=start_cluster, control=control)
    return ctx, result, {c["name"]: c for c in checks}, events


def faults(events):
    return [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]


def breaker_changes(events):
    return [(e["data"]["from"], e["data"]["state"]) for e in events if (e.get("data") or {}).get("type") == "breaker"]


class FaultAt:
    """Fault buttons pressed at given step boundaries, as an instructor would press them."""

    def __init__(self, presses):
        self.presses = dict(presses)  # boundary -> (kind, target)
        self.boundary = 0

    def poll(self):
        self.boundary += 1
        press = self.presses.get(self.boundary)
        return [{"action": "fault", "kind": press[0], "target": press[1], "by": "charlie"}] if press else []

    def wait(self, timeout):
        return None


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_it_loses_every_write_acknowledged_since_the_last_flush_when_the_cache_node_is_killed(supervisor, seed):
    ctx, result, checks, events = run_dedicated(supervisor, "write-behind-loss", seed=seed)
    assert faults(events) == [("kill", "redis1"), ("restart", "redis1")]
    assert result["dirty_at_kill"], "the kill must find writes the flusher had not written yet"
    lost = checks["acknowledged_writes"]
    assert lost["held"] is False
    # The evidence names exactly the keys that were dirty when the node died, with the versions
    # their writers were told and the older versions the table kept.
    assert sorted(w["key"] for w in lost["evidence"]["lost"]) == result["dirty_at_kill"]
    assert all(w["row"] < w["acknowledged"]["version"] for w in lost["evidence"]["lost"])
    # Readers after the restart were served the older rows.
    assert checks["no_stale_read"]["held"] is False
    assert verdict_of(list(checks.values())) == "fail" == get_scenario("cache", "write-behind-loss").expected


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_write_through_loses_no_acknowledged_write_under_the_same_kill(supervisor, seed):
    ctx, result, checks, events = run_dedicated(supervisor, "write-through", seed=seed)
    assert faults(events) == [("kill", "redis1"), ("restart", "redis1")]
    assert result["written"]
    assert {name: c["held"] for name, c in checks.items()} == dict.fromkeys(checks, True), checks


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_clients_fall_back_to_the_database_behind_the_breaker_and_the_cache_warms_again(supervisor, seed):
    ctx, result, checks, events = run_dedicated(supervisor, "cache-node-down", seed=seed)
    assert faults(events) == [("kill", "redis1"), ("restart", "redis1")]
    assert {name: c["held"] for name, c in checks.items()} == dict.fromkeys(checks, True), checks
    assert result["client_errors"] == 0
    changes = breaker_changes(events)
    assert changes == [(t["from"], t["to"]) for t in result["transitions"]]
    assert changes[0] == ("closed", "open")
    assert changes[-1] == ("half-open", "closed")
    # Every probe came after a cool-down in the open state.
    assert all(was == "open" for was, state in changes if state == "half-open")
    assert result["breaker"] == "closed"
    ratios = {r["step"]: r["hit_ratio"] for r in result["hit_ratios"]}
    down = range(ctx.params["kill_at"] + 1, ctx.params["restart_at"] + 1)
    assert all(ratios[s] == 0 for s in down)
    assert ratios[ctx.params["steps"]] > 0  # the cold cache serves hits again


def test_without_a_breaker_the_outage_reaches_the_clients_as_errors(supervisor):
    ctx, result, checks, events = run_dedicated(supervisor, "cache-node-down", {"breaker": False})
    errors = checks["no_client_error"]
    assert errors["held"] is False
    assert errors["evidence"]["errors"] and all("Error" in e["error"] for e in errors["evidence"]["errors"])
    assert breaker_changes(events) == []


def test_a_paused_node_opens_the_breaker_and_the_probe_deletes_the_keys_written_meanwhile(supervisor):
    # Paused, the node keeps its entries, and the writes meanwhile could not delete theirs: the
    # probe that closes the breaker again deletes them first.
    control = FaultAt({2: ("pause", "redis1"), 5: ("resume", "redis1")})
    params = {"kill_at": 12, "restart_at": 13, "read_ratio": 0.5, "keys": 10, "cool_down_ms": 1}
    ctx, result, checks, events = run_dedicated(supervisor, "cache-node-down", params, control=control)
    assert faults(events)[:2] == [("pause", "redis1"), ("resume", "redis1")]
    changes = breaker_changes(events)
    assert changes[0] == ("closed", "open") and ("half-open", "open") in changes  # probes failed while paused
    resumed = next(e["seq"] for e in events if e["kind"] == "fault" and e["data"]["kind"] == "resume")
    deletes = [e for e in events if e["kind"] == "cmd" and "written while the breaker was open" in e["label"]]
    assert deletes and all(e["data"]["ok"] and e["seq"] > resumed for e in deletes)
    assert result["client_errors"] == 0
    assert {name: c["held"] for name, c in checks.items()} == dict.fromkeys(checks, True), checks


def test_it_refuses_a_restart_scheduled_before_the_kill():
    scenario = get_scenario("cache", "cache-node-down")
    _, errors = scenario.validate({"kill_at": 5, "restart_at": 5})
    assert errors == {"restart_at": ["must be after kill_at"]}
    _, errors = scenario.validate({"restart_at": 16})
    assert errors == {"restart_at": ["must be before the last step, so the cache can warm again"]}


def test_write_through_keeps_every_acknowledged_write_and_serves_nothing_stale_whatever_the_buttons_do(supervisor):
    # Paused, the node keeps the entries the writes meanwhile could not set; killed and restarted
    # by hand, it comes back cold. Either way the table has every acknowledged write and the
    # entries left older than their rows are deleted before the cache is used again.
    control = FaultAt(
        {2: ("pause", "redis1"), 4: ("resume", "redis1"), 5: ("kill", "redis1"), 6: ("restart", "redis1")}
    )
    params = {"read_ratio": 0.5, "keys": 10}
    ctx, result, checks, events = run_dedicated(supervisor, "write-through", params, control=control)
    assert faults(events)[:4] == [("pause", "redis1"), ("resume", "redis1"), ("kill", "redis1"), ("restart", "redis1")]
    assert ("closed", "open") in breaker_changes(events), "the paused node was taken out of use"
    assert {name: c["held"] for name, c in checks.items()} == dict.fromkeys(checks, True), checks
    acknowledged = [op for op in ctx.history.completed("write") if op["type"] == "ok"]
    assert len(acknowledged) == len(ctx.history.completed("write")), "write-through refuses no write"


def test_write_behind_refuses_writes_while_the_node_is_down_and_loses_what_a_button_kill_found_unflushed(supervisor):
    control = FaultAt({2: ("kill", "redis1"), 4: ("restart", "redis1")})
    params = {"read_ratio": 0.5, "keys": 10, "flush_every": 5}
    ctx, result, checks, events = run_dedicated(supervisor, "write-behind-loss", params, control=control)
    assert faults(events)[:2] == [("kill", "redis1"), ("restart", "redis1")]
    refused = [op for op in ctx.history.completed("write") if op["type"] == "fail"]
    assert refused and result["refused_writes"] == len(refused), "writes while the node was down were refused, visibly"
    assert all("not reachable" in op["error"] for op in refused)
    # The first flush was due after step 5: every write acknowledged before the button's kill
    # at the second boundary existed only in redis1, and is lost.
    kill = next(e["seq"] for e in events if e["kind"] == "fault" and e["data"]["kind"] == "kill")
    before_kill = {
        e["data"]["key"]
        for e in events
        if e["seq"] < kill and (e.get("data") or {}).get("type") == "entry" and e["data"].get("dirty")
    }
    lost = {w["key"] for w in checks["acknowledged_writes"]["evidence"]["lost"]}
    assert before_kill and before_kill & lost
    assert verdict_of(list(checks.values())) == "fail"
