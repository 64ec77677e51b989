"""Each fault does what it says, on real processes: a killed MariaDB refuses connections and keeps its
committed rows and prepared XA transactions across a restart, a paused Redis stops answering until it
is resumed, a partition holds traffic both ways until healed, latency slows replies without losing
them, and an expired ZooKeeper session takes its ephemeral nodes with it."""

import socket

import pymysql
import pytest
import redis
from kazoo.client import KazooClient, KazooState

from apps.cluster.supervisor import ClusterError
from apps.runs.engine_api import NodeDown
from tests.conftest import wait_until

from .conftest import redis_client


@pytest.fixture(scope="module")
def trio(supervisor):
    cluster = supervisor.up("trio", mariadb=3)
    yield cluster
    supervisor.down("trio", missing_ok=True)


@pytest.fixture(scope="module")
def mixed(supervisor):
    cluster = supervisor.up("mixed", mariadb=1, redis=1, zookeeper=1)
    yield cluster
    supervisor.down("mixed", missing_ok=True)


def connect(node, direct=False):
    return pymysql.connect(**node.mysql_params(direct), connect_timeout=2, read_timeout=5, autocommit=True)


def query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_it_starts_three_mariadb_nodes_each_answering_through_its_own_proxy(supervisor, trio):
    assert trio.names == ["db1", "db2", "db3"]
    for node in trio.nodes:
        assert node.proxy_port != node.port
        conn = connect(node)
        try:
            # Through the proxy, each client reaches its own node's server.
            assert query(conn, "SELECT @@port") == ((node.port,),)
        finally:
            conn.close()
    assert [(n.state, n.proxy_up) for n in supervisor.status("trio").nodes] == [("up", True)] * 3


def test_a_killed_mariadb_refuses_connections_then_restarts_with_its_committed_rows_and_prepared_xa(
    supervisor, trio, events
):
    db1 = trio.node("db1")
    conn = connect(db1)
    query(conn, "CREATE DATABASE bank")
    query(conn, "CREATE TABLE bank.accounts (id INT PRIMARY KEY, owner VARCHAR(20)) ENGINE=InnoDB")
    query(conn, "INSERT INTO bank.accounts VALUES (1, 'alice')")
    query(conn, "XA START 'transfer-1'")
    query(conn, "INSERT INTO bank.accounts VALUES (2, 'bob')")
    query(conn, "XA END 'transfer-1'")
    query(conn, "XA PREPARE 'transfer-1'")

    supervisor.fault("trio", "db1", "kill", on_event=events)

    assert events.summary() == [("fault", "kill db1", None), ("node", "db1 down", "down")]
    assert events.items[0]["actor"] == "instructor" and events.items[0]["to"] == "db1"
    assert supervisor.status("trio").node("db1").state == "down"
    with pytest.raises(pymysql.OperationalError):
        connect(db1, direct=True)
    with pytest.raises(pymysql.OperationalError):
        connect(db1)  # through the proxy: it accepts, finds no server, and resets the connection

    supervisor.fault("trio", "db1", "restart", on_event=events)

    assert events.summary()[-2:] == [("fault", "restart db1", None), ("node", "db1 up", "up")]
    conn = connect(db1)
    try:
        assert query(conn, "SELECT id, owner FROM bank.accounts") == ((1, "alice"),)
        assert [row[3] for row in query(conn, "XA RECOVER")] == [b"transfer-1"]
        query(conn, "XA COMMIT 'transfer-1'")
        assert query(conn, "SELECT id, owner FROM bank.accounts ORDER BY id") == ((1, "alice"), (2, "bob"))
    finally:
        conn.close()


def test_a_graceful_stop_then_restart_keeps_the_node_on_the_same_ports(supervisor, trio):
    before = supervisor.status("trio").node("db3")
    supervisor.fault("trio", "db3", "stop")
    assert supervisor.status("trio").node("db3").state == "down"
    supervisor.fault("trio", "db3", "restart")
    after = supervisor.status("trio").node("db3")
    assert (after.state, after.port, after.proxy_port) == ("up", before.port, before.proxy_port)
    assert after.pid != before.pid


def test_a_fault_on_a_node_that_is_down_reaches_an_engine_as_node_down(supervisor, trio):
    supervisor.fault("trio", "db3", "kill")
    try:
        with pytest.raises(NodeDown, match="cannot pause db3: it is down") as refused:
            supervisor.fault("trio", "db3", "pause")
        assert (refused.value.node, refused.value.state) == ("db3", "down")
        assert isinstance(refused.value, ClusterError)  # the CLI and the API refuse it in one line
    finally:
        supervisor.fault("trio", "db3", "restart")
    assert supervisor.status("trio").node("db3").state == "up"


def test_kill_connections_ends_every_mariadb_client_connection_but_the_killers(supervisor, trio):
    db2 = trio.node("db2")
    alice, bob = connect(db2), connect(db2)
    result = supervisor.fault("trio", "db2", "kill-connections")
    assert {alice.thread_id(), bob.thread_id()} <= set(result["connections"])
    for conn in (alice, bob):
        with pytest.raises(pymysql.OperationalError):
            query(conn, "SELECT 1")
    fresh = connect(db2)
    assert query(fresh, "SELECT 1") == ((1,),)
    fresh.close()


def test_a_fault_that_does_not_fit_the_node_is_refused_with_the_reason(supervisor, trio):
    with pytest.raises(ClusterError, match="cannot resume db2: it is up"):
        supervisor.fault("trio", "db2", "resume")
    with pytest.raises(ClusterError, match="no node 'db9' in cluster 'trio'"):
        supervisor.fault("trio", "db9", "kill")
    with pytest.raises(ClusterError, match="unknown fault 'explode'"):
        supervisor.fault("trio", "db2", "explode")
    with pytest.raises(ClusterError, match="latency takes ms"):
        supervisor.fault("trio", "db2", "latency", ms=-5)
    with pytest.raises(ClusterError, match="already up"):
        supervisor.up("trio", mariadb=1)


def test_a_paused_redis_times_out_and_answers_again_after_resume(supervisor, mixed, events):
    address = mixed.node("redis1").address
    assert redis_client(address).set("greeting", "hello")

    supervisor.fault("mixed", "redis1", "pause", on_event=events)

    assert supervisor.status("mixed").node("redis1").state == "paused"
    with pytest.raises(redis.TimeoutError):
        redis_client(address, timeout=0.5).get("greeting")

    supervisor.fault("mixed", "redis1", "resume", on_event=events)

    assert redis_client(address).get("greeting") == "hello"
    assert events.summary() == [
        ("fault", "pause redis1", None),
        ("node", "redis1 paused", "paused"),
        ("fault", "resume redis1", None),
        ("node", "redis1 up", "up"),
    ]


def test_a_partition_holds_traffic_both_ways_until_healed(supervisor, mixed):
    node = mixed.node("redis1")
    direct = redis_client(f"127.0.0.1:{node.port}")
    direct.delete("queue", "fate")
    # Client to server: a blocking pop is waiting inside the server when the partition begins.
    waiter = socket.create_connection(("127.0.0.1", node.proxy_port), timeout=5)
    waiter.sendall(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$2\r\n30\r\n")
    blocked = lambda: any(c["cmd"] == "blpop" for c in direct.client_list())  # noqa: E731
    wait_until(blocked, 5, "the BLPOP to reach the server")
    writer = redis_client(node.address, timeout=1.0)
    writer.ping()

    supervisor.fault("mixed", "redis1", "partition")

    with pytest.raises(redis.TimeoutError):
        writer.set("fate", "written during the partition")
    with pytest.raises(redis.TimeoutError):
        redis_client(node.address, timeout=0.5).ping()  # a new connection is accepted, then hears nothing
    # Server to client: the server pops the item and replies, but the reply does not get through.
    direct.rpush("queue", "job-1")
    assert direct.llen("queue") == 0
    waiter.settimeout(0.5)
    with pytest.raises(TimeoutError):
        waiter.recv(100)
    assert direct.get("fate") is None  # the timed-out write has not reached the server

    supervisor.fault("mixed", "redis1", "heal")

    waiter.settimeout(5)
    assert b"job-1" in waiter.recv(100)
    waiter.close()
    assert redis_client(node.address).ping()
    # Like TCP retransmitting across a healed network, the write that timed out still lands: its
    # outcome was unknown to the client, not failed.
    wait_until(lambda: direct.get("fate") == "written during the partition", 5, "the held write to land")


def ping(address, timeout):
    """One PING on a new raw connection: no handshake, so latency counts once each way."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(100)


def test_latency_delays_replies_without_losing_them(supervisor, mixed):
    address = mixed.node("redis1").address
    supervisor.fault("mixed", "redis1", "latency", ms=1000)
    try:
        assert supervisor.status("mixed").node("redis1").latency_ms == 1000
        with pytest.raises(TimeoutError):
            ping(address, timeout=0.5)
        assert ping(address, timeout=10) == b"+PONG\r\n"  # slow, but it arrives
    finally:
        supervisor.fault("mixed", "redis1", "latency", ms=0)
    assert ping(address, timeout=0.5) == b"+PONG\r\n"


def test_drop_closes_the_current_connections_and_new_ones_work(supervisor, mixed):
    db1 = mixed.node("db1")
    conn = connect(db1)
    result = supervisor.fault("mixed", "db1", "drop")
    assert result["dropped"] >= 1
    with pytest.raises(pymysql.OperationalError):
        query(conn, "SELECT 1")
    fresh = connect(db1)
    assert query(fresh, "SELECT 1") == ((1,),)
    fresh.close()


def test_kill_connections_ends_the_redis_clients_but_the_killers(supervisor, mixed):
    # A raw connection: redis-py would quietly reconnect on its next command and hide the kill.
    address = mixed.node("redis1").address
    host, port = address.split(":")
    alice = socket.create_connection((host, int(port)), timeout=5)
    alice.sendall(b"PING\r\n")
    assert alice.recv(100) == b"+PONG\r\n"

    assert supervisor.fault("mixed", "redis1", "kill-connections")["killed"] >= 1

    assert alice.recv(100) == b""  # the server closed her connection
    alice.close()
    assert ping(address, timeout=5) == b"+PONG\r\n"


def test_an_expired_zookeeper_session_loses_its_ephemeral_nodes(supervisor, mixed):
    hosts = mixed.zk_hosts
    alice, observer = KazooClient(hosts=hosts, timeout=10), KazooClient(hosts=hosts, timeout=10)
    states = []
    alice.add_listener(states.append)
    alice.start(timeout=10)
    observer.start(timeout=10)
    try:
        alice.create("/locks/printer", b"alice", ephemeral=True, makepath=True)
        assert observer.exists("/locks/printer")
        session = alice.client_id

        result = supervisor.fault("mixed", "zk1", "expire-session", client_id=session)

        assert result["session"] == hex(session[0])
        wait_until(lambda: observer.exists("/locks/printer") is None, 10, "the ephemeral node to go")
        wait_until(lambda: KazooState.LOST in states, 10, "alice to learn her session expired")
    finally:
        for client in (alice, observer):
            client.stop()
            client.close()


def test_three_zookeeper_nodes_form_one_ensemble_that_keeps_serving_without_one_of_them(supervisor):
    ensemble = supervisor.up("ensemble", zookeeper=3)
    clients = []
    try:
        for node in ensemble.nodes:
            client = KazooClient(hosts=node.address, timeout=10)
            client.start(timeout=10)
            clients.append(client)
        clients[0].create("/config", b"v1")
        clients[2].sync("/config")
        assert clients[2].get("/config")[0] == b"v1"  # written on zk1, read on zk3: one ensemble

        supervisor.fault("ensemble", "zk2", "kill")

        # Two of three is still a quorum (after a new election if zk2 led).
        def written():
            try:
                clients[0].set("/config", b"v2")
                return True
            except Exception:  # noqa: BLE001 - not serving while it elects a new leader
                return False

        wait_until(written, 20, "the two remaining nodes to accept a write")
        clients[2].sync("/config")
        assert clients[2].get("/config")[0] == b"v2"
    finally:
        for client in clients:
            client.stop()
            client.close()
        supervisor.down("ensemble")
