"""A reply lost after COMMIT, on a real dedicated MariaDB: the proxy relays the client's next request
and cuts the connection once the server has answered. The server did the work; the client was told
nothing but "lost connection", so it cannot know whether its transaction committed."""

import pymysql
import pytest

from apps.cluster.supervisor import ClusterError


@pytest.fixture(scope="module")
def solo(supervisor):
    cluster = supervisor.up("solo", mariadb=1)
    yield cluster
    supervisor.down("solo", missing_ok=True)


def connect(node, **options):
    params = dict(node.mysql_params(), connect_timeout=2, read_timeout=5, autocommit=True)
    return pymysql.connect(**{**params, **options})


def query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@pytest.fixture(scope="module")
def orders_table(solo):
    conn = connect(solo.node("db1"))
    query(conn, "CREATE DATABASE shop")
    query(conn, "CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(20)) ENGINE=InnoDB")
    conn.close()
    return "shop.orders"


def test_it_commits_the_transaction_although_the_client_sees_a_lost_connection(supervisor, solo, orders_table):
    db1 = solo.node("db1")
    alice = connect(db1, autocommit=False)
    query(alice, "INSERT INTO shop.orders (who) VALUES ('alice')")

    armed = supervisor.fault("solo", "db1", "lose-reply")
    assert armed["armed"] == 1
    with pytest.raises(pymysql.OperationalError) as lost:
        alice.commit()
    assert lost.value.args[0] in (2006, 2013)  # gone away / lost connection: no answer to COMMIT

    bob = connect(db1)
    assert query(bob, "SELECT who FROM shop.orders") == (("alice",),)
    bob.close()


def test_a_client_that_retries_after_the_lost_reply_writes_twice(supervisor, solo, orders_table):
    db1 = solo.node("db1")
    conn = connect(db1, autocommit=False)
    query(conn, "INSERT INTO shop.orders (who) VALUES ('charlie')")
    supervisor.fault("solo", "db1", "lose-reply")
    with pytest.raises(pymysql.OperationalError):
        conn.commit()
    # What a plain retry does: a new connection, the same INSERT again, and this time an answer.
    retry = connect(db1, autocommit=False)
    query(retry, "INSERT INTO shop.orders (who) VALUES ('charlie')")
    retry.commit()
    assert query(retry, "SELECT COUNT(*) FROM shop.orders WHERE who = 'charlie'") == ((2,),)
    retry.close()


def test_it_loses_one_reply_per_order_and_other_requests_pass(supervisor, solo, orders_table):
    db1 = solo.node("db1")
    conn = connect(db1)
    supervisor.fault("solo", "db1", "lose-reply")
    with pytest.raises(pymysql.OperationalError):
        query(conn, "SELECT 1")
    assert supervisor.status("solo").node("db1").state == "up"  # the server was never touched
    fresh = connect(db1)
    assert query(fresh, "SELECT 1") == ((1,),)
    assert query(fresh, "SELECT 2") == ((2,),)
    fresh.close()


def test_it_is_refused_on_a_node_that_is_down(supervisor, solo):
    supervisor.fault("solo", "db1", "kill")
    try:
        with pytest.raises(ClusterError, match="cannot lose a reply from db1: it is down"):
            supervisor.fault("solo", "db1", "lose-reply")
    finally:
        supervisor.fault("solo", "db1", "restart")
    assert supervisor.status("solo").node("db1").state == "up"
