"""The binlog reader on this MariaDB (python-mysql-replication is tested upstream on 10.6 only):
dedicated servers with the CDC settings, an account with only REPLICATION SLAVE, BINLOG MONITOR
and SELECT, and what BinLogStreamReader gives through apps.sync.engine.binlog."""

import os
import queue
import threading
from itertools import count

import pymysql
import pytest

from apps.sync.common import BINLOG_OPTIONS
from apps.sync.engine import binlog

CREATE = """CREATE TABLE a (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  bkey VARCHAR(40) NOT NULL,
  value VARCHAR(64) NOT NULL,
  version INT NOT NULL
) ENGINE=InnoDB"""
INSERT = "INSERT INTO a (bkey, value, version) VALUES (%s, %s, 1)"
server_ids = count(200)
schemas = count(1)


def connect(params, db=None):
    settings = {k: params[k] for k in ("host", "port", "user", "password")}
    return pymysql.connect(**settings, database=db, autocommit=True)


class Source:
    """A dedicated MariaDB writing its binlog, its admin connection, and the reader's account."""

    def __init__(self, supervisor, name):
        cluster = supervisor.up(name, mariadb=1, options=BINLOG_OPTIONS, owner_pid=os.getpid())
        self.admin_params = cluster.node("db1").mysql_params()
        admin = connect(self.admin_params)
        binlog.create_account(admin, "cdc", "cdc-secret")
        admin.close()
        self.params = {**self.admin_params, "user": "cdc", "password": "cdc-secret"}

    def database(self):
        """A schema of the test's own, with an empty table a, and an admin connection into it."""
        name = f"t{next(schemas)}"
        admin = connect(self.admin_params)
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"USE {name}")
            cur.execute(CREATE)
        return name, admin

    def reader(self, schema, start, **options):
        return binlog.Reader(self.params, next(server_ids), start, schema, "a", **options)


@pytest.fixture(scope="module")
def source(supervisor):
    return Source(supervisor, "binlog-reader")


def run(conn, *statements):
    with conn.cursor() as cur:
        for statement in statements:
            if isinstance(statement, tuple):
                cur.execute(*statement)
            else:
                cur.execute(statement)


def rows_of(changes):
    return [(c.op, c.id, c.row and c.row["version"]) for c in changes if c.op in ("insert", "update", "delete")]


def test_it_gives_inserts_updates_and_deletes_as_named_columns_with_the_row_before_an_update(source):
    schema, conn = source.database()
    start = binlog.current_position(conn)
    run(
        conn,
        (INSERT, ("k1", "first")),
        (INSERT, ("k2", "second")),
        "UPDATE a SET value = 'changed', version = 2 WHERE id = 1",
        "DELETE FROM a WHERE id = 2",
    )
    changes = list(source.reader(schema, start))
    rows = [c for c in changes if c.op != "commit"]
    assert [(c.op, c.id) for c in rows] == [("insert", 1), ("insert", 2), ("update", 1), ("delete", 2)]
    assert rows[0].row == {"id": 1, "bkey": "k1", "value": "first", "version": 1}
    assert rows[2].before == {"id": 1, "bkey": "k1", "value": "first", "version": 1}
    assert rows[2].row == {"id": 1, "bkey": "k1", "value": "changed", "version": 2}
    assert rows[3].row == {"id": 2, "bkey": "k2", "value": "second", "version": 1}  # the row as deleted
    # Four autocommit statements: four transactions, each with its GTID and ending in its commit.
    commits = [c for c in changes if c.op == "commit"]
    assert len(commits) == 4 and all(c.xid for c in commits)
    assert len({c.gtid for c in commits}) == 4 and all(r.gtid for r in rows)


def test_a_transaction_comes_as_its_row_changes_then_one_commit_in_the_order_written(source):
    schema, conn = source.database()
    start = binlog.current_position(conn)
    run(conn, "BEGIN", (INSERT, ("k1", "x")), (INSERT, ("k2", "y")), "UPDATE a SET version = 2 WHERE id = 1", "COMMIT")
    changes = list(source.reader(schema, start))
    assert [c.op for c in changes] == ["insert", "insert", "update", "commit"]
    assert len({c.gtid for c in changes}) == 1
    positions = [c.position for c in changes]
    assert positions == sorted(positions) and all(c.position < c.next_position for c in changes)


def test_positions_are_the_servers_own_and_the_reader_ends_where_the_binlog_does(source):
    schema, conn = source.database()
    start = binlog.current_position(conn)
    run(conn, (INSERT, ("k1", "x")))
    reader = source.reader(schema, start)
    changes = list(reader)
    assert changes[-1].op == "commit"
    assert reader.position == changes[-1].next_position == binlog.current_position(conn)
    assert binlog.Position.from_dict(reader.position.as_dict()) == reader.position


def test_a_snapshot_holds_what_committed_before_its_position_and_the_binlog_what_came_after(source):
    schema, conn = source.database()
    run(conn, (INSERT, ("k1", "before")), (INSERT, ("k2", "before")))
    open_txn = connect(source.admin_params, schema)
    run(open_txn, "BEGIN", (INSERT, ("k3", "in flight")))  # not committed when the snapshot is taken
    position, rows = binlog.snapshot(connect(source.params, schema), "a")
    run(open_txn, "COMMIT")
    run(conn, "UPDATE a SET version = 2 WHERE id = 1")
    assert [r["bkey"] for r in rows] == ["k1", "k2"]
    assert rows_of(source.reader(schema, position)) == [("insert", 3, 1), ("update", 1, 2)]


def test_it_resumes_from_a_saved_commit_position_without_replaying_or_skipping(source):
    schema, conn = source.database()
    start = binlog.current_position(conn)
    run(conn, (INSERT, ("k1", "x")), (INSERT, ("k2", "y")))
    first = list(source.reader(schema, start))
    saved = binlog.Position.from_dict(first[-1].next_position.as_dict())  # as an offset table keeps it
    run(conn, (INSERT, ("k3", "z")), "UPDATE a SET version = 2 WHERE id = 2")
    assert rows_of(source.reader(schema, saved)) == [("insert", 3, 1), ("update", 2, 2)]
    assert rows_of(source.reader(schema, start)) == [
        ("insert", 1, 1),
        ("insert", 2, 1),
        ("insert", 3, 1),
        ("update", 2, 2),
    ]


def test_rows_are_mapped_with_the_schema_in_force_at_their_position_across_an_alter(source):
    schema, conn = source.database()
    start = binlog.current_position(conn)
    run(
        conn,
        (INSERT, ("k1", "old shape")),
        "ALTER TABLE a ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT ''",
        ("INSERT INTO a (bkey, value, version, note) VALUES (%s, %s, 1, %s)", ("k2", "new shape", "hello")),
        "UPDATE a SET version = 2 WHERE id = 1",
    )
    # Read after the ALTER: the table now has `note`, yet the first row is as it was written.
    changes = [c for c in source.reader(schema, start) if c.op != "commit"]
    assert [c.op for c in changes] == ["insert", "ddl", "insert", "update"]
    assert changes[0].row == {"id": 1, "bkey": "k1", "value": "old shape", "version": 1}
    assert changes[1].sql.startswith("ALTER TABLE a ADD COLUMN note")
    assert changes[2].row == {"id": 2, "bkey": "k2", "value": "new shape", "version": 1, "note": "hello"}
    assert changes[3].before["note"] == "" and changes[3].row["version"] == 2
    # A DDL is a transaction boundary of its own: streaming may resume right after it.
    assert changes[1].resumable
    assert [c.op for c in source.reader(schema, changes[1].next_position) if c.op != "commit"] == ["insert", "update"]


def test_a_blocking_reader_waits_for_new_changes_and_stops_from_another_thread(source):
    schema, conn = source.database()
    reader = source.reader(schema, binlog.current_position(conn), blocking=True)
    seen = queue.Queue()
    ended = threading.Event()

    def follow():
        for change in reader:
            seen.put(change)
        ended.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    run(conn, (INSERT, ("k1", "x")))
    assert seen.get(timeout=30).op == "insert"
    assert seen.get(timeout=30).op == "commit"
    assert not ended.is_set()  # at the end of the binlog it waits for more
    reader.stop()
    thread.join(30)
    assert ended.is_set()


def test_other_tables_changes_are_left_out_but_their_commits_still_move_the_position(source):
    schema, conn = source.database()
    run(conn, "CREATE TABLE other (id INT PRIMARY KEY)")
    start = binlog.current_position(conn)
    run(conn, "INSERT INTO other VALUES (1)", (INSERT, ("k1", "x")))
    reader = source.reader(schema, start)
    changes = list(reader)
    assert rows_of(changes) == [("insert", 1, 1)]
    assert reader.position == binlog.current_position(conn)


def test_it_raises_position_purged_when_the_binlog_it_needs_was_purged(supervisor):
    purged = Source(supervisor, "binlog-purged")
    schema, conn = purged.database()
    start = binlog.current_position(conn)
    run(conn, (INSERT, ("k1", "x")))
    begins = binlog.rotate_and_purge(conn)
    assert start.file not in binlog.binlog_files(conn)
    with pytest.raises(binlog.PositionPurged) as raised:
        list(purged.reader(schema, start))
    assert raised.value.position == start
    assert str(raised.value).startswith("1236: ")
    # A new snapshot gives a position the server still has.
    position, rows = binlog.snapshot(connect(purged.params, schema), "a")
    assert position.file == begins.file and [r["bkey"] for r in rows] == ["k1"]
    assert list(purged.reader(schema, position)) == []
