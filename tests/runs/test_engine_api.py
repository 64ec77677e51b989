"""The engine API's one command recorder: every lab's SQL, Redis and ZooKeeper commands become the
same `cmd` event, for success and failure alike."""

import pymysql
import pytest
import redis
from django.conf import settings
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from apps.runs.engine_api import NodeDown, RunStopped, cmd, summarize
from apps.runs.nodes import mysql_params

SHAPE = {"node", "command", "ok", "result", "ms", "error"}


class Events(list):
    def __call__(self, kind, **fields):
        self.append({"kind": kind, **fields})
        return self[-1]


def test_it_records_a_real_redis_command_and_its_result():
    events = Events()
    client = redis.Redis.from_url(settings.LAB_REDIS_URL)
    try:
        assert cmd(events, "c1", "redis", "SET apitest:k v", lambda: client.set("apitest:k", "v")) is True
        value = cmd(events, "c1", "redis", "GET apitest:k", lambda: client.get("apitest:k"))
    finally:
        client.delete("apitest:k")
        client.close()
    assert value == b"v"
    assert [e["kind"] for e in events] == ["cmd", "cmd"]
    get = events[1]
    assert (get["actor"], get["to"], get["label"]) == ("c1", "redis", "GET apitest:k")
    assert set(get["data"]) == SHAPE
    assert get["data"]["ok"] is True and get["data"]["result"] == "v" and get["data"]["error"] is None
    assert get["data"]["ms"] >= 0


def test_it_records_a_failed_sql_statement_with_the_servers_error_and_raises_it():
    events = Events()
    conn = pymysql.connect(**mysql_params(settings.LAB_MARIADB_URL), autocommit=True)
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.MySQLError):
            cmd(events, "coordinator", "mariadb", "SELECT * FROM nowhere", lambda: cur.execute("SELECT * FROM nowhere"))
    finally:
        conn.close()
    (event,) = events
    assert set(event["data"]) == SHAPE
    assert event["data"]["ok"] is False and event["data"]["result"] is None
    # MariaDB's own code and message: no database selected, or no such table.
    assert event["data"]["error"].split(":")[0] in ("1046", "1146")


def test_it_records_a_zookeeper_command_that_finds_no_node():
    events = Events()
    zk = KazooClient(hosts=settings.LAB_ZK_HOSTS)
    zk.start(timeout=10)
    try:
        with pytest.raises(NoNodeError):
            cmd(events, "c2", "zookeeper", "get /distlab-api-test-missing", lambda: zk.get("/distlab-api-test-missing"))
    finally:
        zk.stop()
        zk.close()
    (event,) = events
    assert event["data"]["ok"] is False and event["data"]["error"].startswith("NoNodeError")


def test_with_recording_off_it_only_calls():
    assert cmd(None, "c1", "redis", "PING", lambda: "PONG") == "PONG"


def test_a_stopped_run_is_not_recorded_as_a_failed_command():
    events = Events()

    def stopped():
        raise RunStopped("stopped by alice")

    with pytest.raises(RunStopped):
        cmd(events, "c1", "redis", "BLPOP q", stopped)
    assert events == []


def test_results_are_summed_up_for_the_command_log():
    assert summarize([b"a", 1, None]) == ["a", 1, None]
    assert len(summarize("x" * 1000)) == 200
    assert summarize(list(range(30)))[-1] == "… 10 more"


def test_node_down_names_the_node_and_its_state():
    exc = NodeDown("db1", "down")
    assert (exc.node, exc.state, str(exc)) == ("db1", "down", "db1 is down")
