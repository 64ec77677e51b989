"""The diagnostics engines against the real shared nodes, with no Django in the loop."""

import pymysql
import pytest
import redis
from kazoo.client import KazooClient

from apps.runs.nodes import SharedNodes, mysql_params
from apps.runs.registry import get_scenario
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine


def fold_node_states(events):
    """Applies `node` and `state` events in order, as the run page does."""
    states = {}
    for e in events:
        if e["kind"] in ("node", "state") and "state" in e["data"]:
            states[e["actor"]] = e["data"]["state"]
    return states


def test_ping_gets_a_real_answer_from_every_node_and_passes():
    ctx, result, checks, events = run_engine(get_scenario("diagnostics", "ping"), lab_node_urls(), {"rounds": 2})
    assert result["answered"] == {"mariadb": 2, "redis": 2, "zookeeper": 2}
    assert checks[0]["name"] == "all_nodes_answered" and checks[0]["held"] is True
    commands = [(e["to"], e["data"]["command"], e["data"]["result"]) for e in events if e["kind"] == "cmd"]
    assert commands[:3] == [(node, "connect", "connected") for node in ("mariadb", "redis", "zookeeper")]
    assert commands[3:6] == [
        ("mariadb", "SELECT 1", "1"),
        ("redis", "PING", "PONG"),
        ("zookeeper", "exists /", "exists (version 0)"),
    ]
    replies = [e for e in events if e["kind"] == "msg" and "reply_to" in e["data"]]
    requests = {e["seq"]: e for e in events if e["kind"] == "msg" and "reply_to" not in e["data"]}
    assert len(replies) == 6
    assert all(requests[r["data"]["reply_to"]]["to"] == r["actor"] for r in replies)
    latencies = [e for e in events if e["kind"] == "metric"]
    assert {e["data"]["series"] for e in latencies} == {"mariadb", "redis", "zookeeper"}


def test_replaying_the_state_events_gives_the_nodes_real_final_state():
    _, _, _, events = run_engine(get_scenario("diagnostics", "ping"), lab_node_urls(), {"rounds": 1})
    urls = lab_node_urls()
    real = {}
    conn = pymysql.connect(**mysql_params(urls["mariadb_url"]))
    real["mariadb"] = "up" if conn.cursor().execute("SELECT 1") == 1 else "unreachable"
    conn.close()
    real["redis"] = "up" if redis.Redis.from_url(urls["redis_url"]).ping() else "unreachable"
    zk = KazooClient(hosts=urls["zk_hosts"])
    zk.start()
    real["zookeeper"] = "up" if zk.exists("/") else "unreachable"
    zk.stop()
    folded = fold_node_states(events)
    assert {node: folded[node] for node in real} == real


def test_killing_the_probers_mariadb_connection_is_caught_by_the_checker():
    # Boundary 1 follows the connections, boundary 2 the first MariaDB probe: the fault comes in
    # there, as an instructor's button would send it, and is a real KILL CONNECTION on the server.
    class FaultAtSecondBoundary(ScriptedControl):
        def poll(self):
            self.seen_boundaries += 1
            if self.seen_boundaries == 2:
                return [{"action": "fault", "kind": "kill-connections", "target": "mariadb"}]
            return []

    scenario = get_scenario("diagnostics", "ping")
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), {"rounds": 3}, control=FaultAtSecondBoundary())
    faults = [e for e in events if e["kind"] == "fault"]
    assert len(faults) == 1 and faults[0]["to"] == "mariadb" and faults[0]["data"]["connections"]
    assert result["answered"]["mariadb"] == 2  # round 2 hit the killed connection; round 3 reconnected
    assert checks[0]["held"] is False
    assert checks[0]["evidence"]["failures"][0]["node"] == "mariadb"
    assert checks[0]["evidence"]["summary"] == "1 probe went unanswered (mariadb answered 2 of 3)"
    # The request that got no answer is not left in flight: the prober notes it, with the error.
    (noted,) = [e for e in events if e["kind"] == "msg" and e["data"].get("error")]
    assert noted["label"] == "no answer from mariadb" and noted["actor"] == noted["to"] == "prober"


def test_stream_load_emits_every_event_and_the_checker_reads_them_back():
    ctx, result, checks, events = run_engine(
        get_scenario("diagnostics", "stream-load"), lab_node_urls(), {"events": 2500}
    )
    assert result == {"emitted": 2500}
    assert [e["seq"] for e in events[:-1]] == list(range(1, len(events)))
    assert checks[0]["held"] is True


def test_cleanup_removes_the_runs_databases_keys_and_znodes():
    urls = lab_node_urls()
    nodes = SharedNodes(987654321, **urls)
    conn = nodes.mariadb(db="bank")
    conn.cursor().execute("CREATE TABLE accounts (id INT PRIMARY KEY)")
    nodes.redis().set(nodes.key("lock"), "x")
    nodes.zk().create("/leader", b"me")
    nodes.cleanup()
    check = pymysql.connect(**mysql_params(urls["mariadb_url"]))
    with check.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'run987654321\\_%'")
        assert cur.fetchall() == ()
    check.close()
    assert redis.Redis.from_url(urls["redis_url"]).exists("run987654321:lock") == 0
    zk = KazooClient(hosts=urls["zk_hosts"])
    zk.start()
    assert zk.exists("/distlab/run987654321") is None
    zk.stop()


def test_database_names_come_only_from_the_whitelist():
    nodes = SharedNodes(5, **lab_node_urls())
    assert nodes.database("bank_1") == "run5_bank_1"
    for bad in ("x`; DROP DATABASE distlab; --", "Upper", "", "a" * 40):
        try:
            nodes.database(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_the_lab_account_cannot_touch_the_control_database():
    conn = pymysql.connect(**mysql_params(lab_node_urls()["mariadb_url"]))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            visible = {row[0] for row in cur.fetchall()}
        assert "distlab" not in visible
        with pytest.raises(pymysql.MySQLError) as denied:
            conn.select_db("distlab")
        assert denied.value.args[0] == 1044  # access denied
    finally:
        conn.close()
