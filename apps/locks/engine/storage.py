"""The protected resource every lock of the lab guards, kept in MariaDB in the run's own database.

Two tables:

    counter   rows 1..R: value, version (for optimistic locking), last_token (the highest fencing
              token the storage accepted on that row)
    sections  one row per critical section: who entered, with which token, and when it began and
              ended by the STORAGE SERVER's own clock (NOW(6)), so the checker judges overlaps on one
              clock, whatever the clients' clocks say

Any lock engine uses it the same way: one `Storage` per run, one `StorageClient` per client (each
with its own connection, so clients really run concurrently). Every statement binds its values; the
only identifiers are the fixed table names below.

    storage = Storage.on(ctx.nodes, rows=4, emit=ctx.emit)
    storage.setup()
    c1 = storage.client("c1")
    section = c1.enter(row=1, token=33)
    accepted = c1.fenced_increment(1, 33)      # False when a later token already wrote
    c1.leave(section, accepted=accepted)
"""

from dataclasses import dataclass
from datetime import datetime

import pymysql

from apps.runs.engine_api import cmd

DATABASE = "locks"
NODE = "storage"
LOCK_WAIT_TIMEOUT = 1205  # also what FOR UPDATE NOWAIT answers when the row is locked
DEADLOCK = 1213


def errno(exc):
    return exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None


class Conflict(Exception):
    """An optimistic write found another version than the one it read."""


@dataclass
class Section:
    id: int
    client: str
    row: int | None
    token: object
    start_ms: float
    end_ms: float | None = None
    accepted: bool | None = None
    mode: str = "write"

    def as_event(self):
        return {
            "type": "cs",
            "id": self.id,
            "client": self.client,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "token": self.token,
            "accepted": self.accepted,
            "mode": self.mode,
            "row": self.row,
        }


class Storage:
    """The run's counter and critical-section log. `connect()` returns a new autocommit connection
    in the lab's database (see `Storage.on` for a run's nodes)."""

    def __init__(self, connect, rows=1, emit=None, node=None):
        self._connect = connect
        self.rows = int(rows)
        self.emit = emit
        self.node = node
        self.reference = None  # the storage server's NOW(6) at setup: section times are ms since it

    @classmethod
    def on(cls, nodes, rows=1, emit=None, node=None):
        """Storage in the run's own database on its MariaDB (`node` picks a dedicated one)."""

        def connect():
            return nodes.mariadb(DATABASE, node=node) if node else nodes.mariadb(DATABASE)

        return cls(connect, rows=rows, emit=emit, node=node)

    def describe(self):
        """What a checker needs to read the same storage again (see `reopen`)."""
        return {"rows": self.rows, "node": self.node, "reference": self.reference}

    @classmethod
    def reopen(cls, nodes, described):
        storage = cls.on(nodes, rows=described["rows"], node=described.get("node"))
        storage.reference = described["reference"]
        return storage

    def connection(self):
        return self._connect()

    def setup(self):
        """Creates the tables afresh with rows 1..R at zero, and takes the storage clock's reference."""
        conn = self.connection()
        try:
            with conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS counter, sections, fenced_writes")
                cur.execute(
                    "CREATE TABLE counter (id INT PRIMARY KEY, value BIGINT NOT NULL DEFAULT 0,"
                    " version BIGINT NOT NULL DEFAULT 0, last_token BIGINT NULL) ENGINE=InnoDB"
                )
                cur.execute(
                    "CREATE TABLE sections (id INT AUTO_INCREMENT PRIMARY KEY, client VARCHAR(32) NOT NULL,"
                    " row_id INT NULL, token VARCHAR(64) NULL, start_at DATETIME(6) NOT NULL,"
                    " end_at DATETIME(6) NULL, accepted BOOL NULL, mode VARCHAR(8) NOT NULL DEFAULT 'write')"
                    " ENGINE=InnoDB"
                )
                # Every fenced write the storage judged, in the order it judged them.
                cur.execute(
                    "CREATE TABLE fenced_writes (id INT AUTO_INCREMENT PRIMARY KEY, client VARCHAR(32) NOT NULL,"
                    " row_id INT NOT NULL, token BIGINT NOT NULL, last_token BIGINT NULL, accepted BOOL NOT NULL,"
                    " at DATETIME(6) NOT NULL) ENGINE=InnoDB"
                )
                cur.executemany("INSERT INTO counter (id) VALUES (%s)", [(i,) for i in range(1, self.rows + 1)])
                cur.execute("SELECT NOW(6)")
                self.reference = cur.fetchone()[0].isoformat()
        finally:
            conn.close()
        if self.emit:
            self.emit("log", actor=NODE, label=f"counter rows 1..{self.rows} at 0; critical sections logged by NOW(6)")
        return self

    def client(self, name):
        """A client of the storage with a connection of its own."""
        return StorageClient(self, name, self.connection())

    # Reading, for checkers and replays --------------------------------------------------------
    def ms(self, stamp):
        """A storage timestamp as ms since the reference (None stays None)."""
        if stamp is None:
            return None
        ref = datetime.fromisoformat(self.reference)
        return round((stamp - ref).total_seconds() * 1000.0, 3)

    def sections(self):
        conn = self.connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id, client, row_id, token, start_at, end_at, accepted, mode FROM sections ORDER BY id"
                )
                rows = cur.fetchall()
        finally:
            conn.close()
        return [
            Section(
                id=r[0],
                client=r[1],
                row=r[2],
                token=_token(r[3]),
                start_ms=self.ms(r[4]),
                end_ms=self.ms(r[5]),
                accepted=None if r[6] is None else bool(r[6]),
                mode=r[7],
            )
            for r in rows
        ]

    def counters(self):
        """{row: (value, version, last_token)}"""
        conn = self.connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id, value, version, last_token FROM counter ORDER BY id")
                return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in cur.fetchall()}
        finally:
            conn.close()

    def fenced_writes(self):
        conn = self.connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id, client, row_id, token, last_token, accepted FROM fenced_writes ORDER BY id")
                return [
                    {"id": r[0], "client": r[1], "row": r[2], "token": r[3], "last_token": r[4], "accepted": bool(r[5])}
                    for r in cur.fetchall()
                ]
        finally:
            conn.close()


def _rows_or_count(result):
    return f"{result} affected" if isinstance(result, int) else f"{len(result)} rows"


def _token(text):
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


class StorageClient:
    """One client's connection to the storage. Not shared between threads."""

    def __init__(self, storage, name, conn):
        self.storage = storage
        self.name = name
        self.conn = conn
        self.emit = storage.emit

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - already closed, or killed by a fault
            pass

    def sql(self, statement, args=None):
        """Runs one statement: its rows, or the count of rows it changed. With an emitter, it is a
        `cmd` event with the statement as sent (values bound by the driver)."""
        with self.conn.cursor() as cur:

            def execute():
                cur.execute(statement, args)
                return cur.fetchall() if cur.description else cur.rowcount

            if not self.emit:  # recording off: the statement need not be rendered as text
                return execute()
            return cmd(self.emit, self.name, NODE, cur.mogrify(statement, args), execute, summary=_rows_or_count)

    # Transactions (for the pessimistic engines) -----------------------------------------------
    def begin(self):
        self.sql("BEGIN")

    def commit(self):
        self.sql("COMMIT")

    def rollback(self):
        self.sql("ROLLBACK")

    # Critical sections ------------------------------------------------------------------------
    def enter(self, row=None, token=None, mode="write"):
        """Records the start of a critical section by the storage's clock; returns the Section.
        `row` None means the whole resource; "read" sections may overlap other "read" ones."""
        if mode not in ("write", "read"):
            raise ValueError("a critical section's mode is write or read")
        rows = self.sql(
            "INSERT INTO sections (client, row_id, token, start_at, mode) VALUES (%s, %s, %s, NOW(6), %s)"
            " RETURNING id, start_at",
            (self.name, row, None if token is None else str(token), mode),
        )
        section_id, start = rows[0]
        section = Section(section_id, self.name, row, token, self.storage.ms(start), mode=mode)
        if self.emit:
            self.emit("state", actor=NODE, label=f"{self.name} enters", data=section.as_event())
        return section

    def leave(self, section, accepted=None):
        """Records the end of the section by the storage's clock (accepted=False: its write was refused)."""
        self.sql(
            "UPDATE sections SET end_at = NOW(6), accepted = %s WHERE id = %s",
            (None if accepted is None else bool(accepted), section.id),
        )
        end = self.sql("SELECT end_at FROM sections WHERE id = %s", (section.id,))[0][0]
        section.end_ms, section.accepted = self.storage.ms(end), accepted
        if self.emit:
            self.emit("state", actor=NODE, label=f"{self.name} leaves", data=section.as_event())
        return section

    # The counter ------------------------------------------------------------------------------
    def read(self, row, for_update=False, nowait=False):
        """(value, version) of the row; `for_update` takes its exclusive lock (held to COMMIT inside
        a transaction, released at once under autocommit); `nowait` fails with 1205 instead of waiting."""
        statement = "SELECT value, version FROM counter WHERE id = %s"
        if for_update:
            # FOR UPDATE: the row lock is what makes the pessimistic scheme wait for the holder.
            statement += " FOR UPDATE NOWAIT" if nowait else " FOR UPDATE"
        rows = self.sql(statement, (row,))
        return int(rows[0][0]), int(rows[0][1])

    def increment(self, row):
        """value + 1 in one statement (atomic on its own; locks decide what surrounds it)."""
        return self.sql("UPDATE counter SET value = value + 1, version = version + 1 WHERE id = %s", (row,)) == 1

    def write(self, row, value):
        """A blind write of a value computed by the client (read-modify-write without a lock)."""
        self.sql("UPDATE counter SET value = %s, version = version + 1 WHERE id = %s", (value, row))

    def compare_and_set(self, row, value, version):
        """Writes only if the row still has the version read; raises Conflict otherwise."""
        changed = self.sql(
            "UPDATE counter SET value = %s, version = version + 1 WHERE id = %s AND version = %s",
            (value, row, version),
        )
        if changed != 1:
            raise Conflict(f"row {row} is no longer at version {version}")
        return True

    def fenced_increment(self, row, token):
        """value + 1 only if `token` is above the last token the storage accepted on the row;
        returns whether it was accepted. The judgement and the write are one statement."""
        return self._fenced(row, token, "value = value + 1", ())

    def fenced_write(self, row, value, token):
        """A write of a value the client computed, accepted only with a token above the last one."""
        return self._fenced(row, token, "value = %s", (value,))

    def _fenced(self, row, token, assignment, args):
        token = int(token)
        changed = self.sql(
            f"UPDATE counter SET {assignment}, version = version + 1, last_token = %s"
            " WHERE id = %s AND (last_token IS NULL OR last_token < %s)",
            (*args, token, row, token),
        )
        accepted = changed == 1
        self.sql(
            "INSERT INTO fenced_writes (client, row_id, token, last_token, accepted, at)"
            " SELECT %s, %s, %s, last_token, %s, NOW(6) FROM counter WHERE id = %s",
            (self.name, row, token, accepted, row),
        )
        if self.emit and not accepted:
            self.emit("log", actor=NODE, label=f"rejects {self.name}'s write: token {token} is stale")
        return accepted

    def set_lock_wait_timeout(self, seconds):
        """How long a row lock request may wait before InnoDB gives up (error 1205)."""
        self.sql("SET SESSION innodb_lock_wait_timeout = %s", (int(seconds),))

    def thread_id(self):
        return self.conn.thread_id()
