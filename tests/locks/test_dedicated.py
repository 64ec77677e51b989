"""On servers of the run's own: Redlock over five Redis nodes (and a MariaDB for the storage),
killed and restarted for real by the node supervisor; and the pessimistic scheme where the account
may read InnoDB's lock tables."""

import os

from apps.cluster.runnodes import DedicatedNodes
from apps.locks.scenarios import REDIS_NODES
from apps.runs.registry import get_scenario, verdict_of
from tests.engine import run_engine
from tests.locks.commands import assert_one_cmd_shape


def run_dedicated(supervisor, name, params=None, cluster=None, control=None):
    scenario = get_scenario("locks", name)

    def start_cluster(run_id, emit):
        spec = cluster or scenario.cluster
        return DedicatedNodes.start(run_id, supervisor, spec, emit=emit, owner_pid=os.getpid())

    ctx, result, checks, events = run_engine(scenario, params=params, nodes=start_cluster, control=control)
    return result, {c["name"]: c for c in checks}, events


def test_redlock_needs_a_majority_of_the_nodes(supervisor):
    result, checks, events = run_dedicated(supervisor, "redlock", {"clients": 2, "operations": 1, "attempts": 2})
    assert verdict_of(list(checks.values())) == "pass", checks
    assert [(p["down"], p["acquired"] > 0) for p in result["phases"]] == [
        ([], True),
        (["redis1", "redis2"], True),
        (["redis1", "redis2", "redis3"], False),
    ]
    assert result["phases"][2]["refused"] == 2 * 2
    faults = [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]
    assert faults == [("kill", "redis1"), ("kill", "redis2"), ("kill", "redis3")] + [
        ("restart", n) for n in ("redis1", "redis2", "redis3")
    ]
    down = [e["actor"] for e in events if e["kind"] == "node" and e["data"]["state"] == "down"]
    assert down[:3] == ["redis1", "redis2", "redis3"]
    # The run's normal tear-down stops its nodes: they say "stopped", nothing went down then.
    last_fault = max(e["seq"] for e in events if e["kind"] == "fault")
    after = [e for e in events if e["kind"] == "node" and e["seq"] > last_fault]
    torn_down = [(e["actor"], e["data"]["state"], e["label"]) for e in after if e["data"]["state"] != "up"]
    assert sorted(torn_down) == sorted((n, "stopped", f"{n} stopped") for n in (*REDIS_NODES, "db1"))
    # A grant with two nodes down carries the three votes it got.
    assert all(g["votes"] == ["redis3", "redis4", "redis5"] for g in result["phases"][1]["grants"])


class KillAtOnce:
    """An instructor who kills a node at the run's first step boundary."""

    def __init__(self, node):
        self.node, self.sent = node, False

    def poll(self):
        if self.sent:
            return []
        self.sent = True
        return [{"action": "fault", "kind": "kill", "target": self.node}]

    def wait(self, timeout):
        return None


def test_a_node_an_instructor_already_killed_is_left_down_when_the_run_kills_it(supervisor):
    params = {"clients": 1, "operations": 1, "attempts": 2}
    result, checks, events = run_dedicated(supervisor, "redlock", params, control=KillAtOnce("redis1"))
    assert verdict_of(list(checks.values())) == "pass", checks
    kills = [e["to"] for e in events if e["kind"] == "fault" and e["data"]["kind"] == "kill"]
    assert kills == ["redis1", "redis2", "redis3"]
    assert "redis1 is already down" in [e["label"] for e in events if e["kind"] == "log"]


def test_a_restarted_node_that_forgot_the_key_lets_two_clients_hold_the_lock(supervisor):
    result, checks, events = run_dedicated(supervisor, "redlock-restart")
    assert verdict_of(list(checks.values())) == "fail"
    assert result["first"]["votes"] == ["redis1", "redis2", "redis3"]
    assert result["second"] == {"votes": ["redis3", "redis4", "redis5"], "granted": True}
    assert result["both_held"] is True
    pairs = checks["mutual_exclusion"]["evidence"]["pairs"]
    assert [(p["first"]["client"], p["second"]["client"]) for p in pairs] == [("c1", "c2")]
    assert checks["no_lost_update"]["evidence"]["lost"] == 1
    faults = [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]
    assert faults == [
        ("kill", "redis4"),
        ("kill", "redis5"),
        ("restart", "redis4"),
        ("restart", "redis5"),
        ("restart", "redis3"),
    ]
    config = [e for e in assert_one_cmd_shape(events) if e["data"]["command"] == "CONFIG SET appendonly no"]
    assert sorted(e["to"] for e in config) == [f"redis{i}" for i in range(1, 6)] and all(
        e["data"]["ok"] for e in config
    )
    # Read after its restart, redis3 has no key; then c2 takes it there.
    restart = next(e["seq"] for e in events if e["kind"] == "fault" and e["to"] == "redis3")
    after = [e["data"] for e in events if e["seq"] > restart and e["kind"] == "state" and e["actor"] == "redis3"]
    leases = [(d["holder"], d["token"] is None) for d in after if d.get("type") == "lease"]
    assert leases[:2] == [(None, True), ("c2", False)]


def test_pessimistic_waits_are_read_from_information_schema_where_the_account_may(supervisor):
    params = {"clients": 3, "operations": 4, "think_ms": 50}
    result, checks, events = run_dedicated(supervisor, "pessimistic", params, cluster={"mariadb": 1})
    assert verdict_of(list(checks.values())) == "pass"
    assert result["waits_source"] == "information_schema"
    waits = [w for e in events if e["data"].get("type") == "innodb_waits" for w in e["data"]["waits"]]
    assert waits
    assert {(w["table"], w["index"], w["lock_mode"], w["row"]) for w in waits} == {("counter", "PRIMARY", "X", 1)}
    assert all(w["waiting"] in ("c1", "c2", "c3") and w["blocking"] in ("c1", "c2", "c3") for w in waits)
