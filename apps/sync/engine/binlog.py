"""Change data capture from a MariaDB binlog, as Debezium does it: a consistent snapshot that knows
its binlog position, then the row events from that position on. Plain Python, on
python-mysql-replication's BinLogStreamReader. The source runs with binlog_format=ROW,
binlog_row_image=FULL and binlog_row_metadata=FULL (common.BINLOG_OPTIONS), so every row event
carries whole rows and the column names in force when it was written.

    create_account(conn, "cdc", "secret")            # REPLICATION SLAVE, BINLOG MONITOR, SELECT
    position, rows = snapshot(conn, "a")              # rows: [{"id": 1, "bkey": ..., ...}]
    reader = Reader(params, server_id=101, start=position, schema="src", table="a", blocking=True)
    for change in reader:                             # stops at the end of the binlog unless blocking
        if change.op in ("insert", "update", "delete"):
            apply(change.id, change.row)              # the row as it is after (insert, update) or
                                                      # was before (delete); change.before for updates
        if change.resumable:                          # a commit (or a DDL): a safe place to resume
            save(change.next_position)                # Position.as_dict() is JSON
    reader.stop()                                     # from any thread; iteration ends cleanly

    current_position(conn), binlog_files(conn)        # where the source writes; the files it holds
    rotate_and_purge(conn)                            # FLUSH BINARY LOGS, then PURGE every older file

`Reader(..., timeout=s)` gives up on a source that does not answer (paused) after `s` seconds.

A reader kept open between reads (the CDC syncer's, which reads the binlog a step at a time):

    reader = Reader(params, 101, position, "src", "a", blocking=True, heartbeat=0.1, reconnect=False,
                    cache_table_maps=True)
    end = current_position(conn)
    while reader.read_to < end:                       # every event counts, also those left out
        changes = reader.read()                       # one binlog event's changes, often []
        if reader.idle:                               # it waited for a heartbeat: all sent
            break

With `reconnect=False` a lost replication connection raises (pymysql's 2013) instead of being made
again by the library from where it was: the caller starts again from an offset it trusts.

`Reader` raises `PositionPurged` when the server no longer has the binlog at `start` (error 1236):
the caller must take a new snapshot, since the changes in between are gone.

Positions: `change.position` is where the event begins, `change.next_position` where the next one
begins. Only a transaction boundary is a place to resume from (a row event cannot be decoded without
the table map before it), so an offset is the `next_position` of a `commit` or `ddl` change.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    FormatDescriptionEvent,
    HeartbeatLogEvent,
    MariadbBinLogCheckPointEvent,
    MariadbGtidEvent,
    MariadbGtidListEvent,
    QueryEvent,
    RotateEvent,
    StopEvent,
    XidEvent,
)
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

PURGED = 1236  # ER_MASTER_FATAL_ERROR_READING_BINLOG: the binlog asked for is not there (purged)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ROW_EVENTS = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}
# Events that change nothing here but may be the last ones of the binlog (a new file's header, a
# checkpoint written after a purge): asked for anyway, so that `read_to` reaches the binlog's end
# without waiting for the next change.
FILE_EVENTS = (RotateEvent, FormatDescriptionEvent, MariadbGtidListEvent, MariadbBinLogCheckPointEvent, StopEvent)
LOST = 2013  # CR_SERVER_LOST: the replication connection broke
# Statements a transaction's own QueryEvents carry: boundaries, not schema changes.
NOT_DDL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|XA |SAVEPOINT|RELEASE)", re.IGNORECASE)
DDL = re.compile(
    r"^\s*(?:ALTER|CREATE|DROP|RENAME|TRUNCATE)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:`?\w+`?\.)?`?(\w+)`?",
    re.IGNORECASE,
)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the binlog: a file and a byte offset in it (files sort in the order written)."""

    file: str
    pos: int

    def as_dict(self) -> dict:
        return {"file": self.file, "pos": self.pos}

    @classmethod
    def from_dict(cls, data: dict) -> Position:
        return cls(str(data["file"]), int(data["pos"]))

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"


@dataclass(frozen=True)
class Change:
    """One thing the binlog says happened. op: insert, update, delete (a row of the table), ddl
    (a statement that changed the table: `sql`), commit (the end of a transaction: `xid`)."""

    op: str
    position: Position
    next_position: Position
    event: str  # the binlog event's type, as the tape shows it
    timestamp: int  # when the source wrote the event (seconds: the binlog's resolution)
    id: int | None = None
    row: dict | None = None  # the row after an insert or update, the deleted row for a delete
    before: dict | None = None  # the row before an update
    gtid: str | None = None  # the transaction's MariaDB GTID (domain-server-sequence)
    xid: int | None = None
    sql: str | None = None

    @property
    def resumable(self) -> bool:
        """Whether streaming may start again at next_position (a transaction boundary)."""
        return self.op in ("commit", "ddl")


class PositionPurged(Exception):
    """The source no longer holds the binlog at `position`: the changes since are lost to a reader."""

    def __init__(self, position: Position, message: str):
        super().__init__(f"{PURGED}: binlog at {position} is gone ({message})")
        self.position = position
        self.message = message


class ReaderStopped(Exception):
    """Raised inside the reader when it was stopped, to keep the library from reconnecting."""


def quoted(identifier: str) -> str:
    """A table or schema name for SQL, once it is known to be a plain identifier."""
    if not IDENTIFIER.match(identifier):
        raise ValueError(f"bad identifier {identifier!r}")
    return f"`{identifier}`"


def create_account(conn: Any, user: str, password: str) -> None:
    """An account that can read the binlog and snapshot the tables, and nothing more."""
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute("GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO %s@'%%'", (user,))


def current_position(conn: Any) -> Position:
    """Where the source is writing its binlog now."""
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
    if row is None:
        raise RuntimeError("the source has no binlog (start it with --log-bin)")
    return Position(row[0], int(row[1]))


Run = Callable[[str, Callable[[], Any]], Any]  # run(command, call): a caller that records commands


def binlog_files(conn: Any) -> list[str]:
    """The binlog files the source still holds, oldest first."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return [row[0] for row in cur.fetchall()]


def rotate_and_purge(conn: Any, run: Run | None = None, wait_s: float = 10.0) -> Position:
    """What an operator does to reclaim disk: start a new binlog file and purge every older one.
    MariaDB keeps the file it just closed until a background checkpoint says crash recovery no
    longer needs it (PURGE leaves it meanwhile, silently), so the purge is repeated until the file
    is gone. Returns where the binlog now begins."""
    run = run or (lambda command, call: call())
    with conn.cursor() as cur:
        run("FLUSH BINARY LOGS", lambda: cur.execute("FLUSH BINARY LOGS"))
        file = current_position(conn).file
        deadline = time.monotonic() + wait_s
        while True:
            run(f"PURGE BINARY LOGS TO '{file}'", lambda: cur.execute("PURGE BINARY LOGS TO %s", (file,)))
            if binlog_files(conn)[0] == file:
                return Position(file, 4)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the source kept binlogs older than {file}: {binlog_files(conn)}")
            time.sleep(0.1)


def snapshot(conn: Any, table: str, run: Run | None = None) -> tuple[Position, list[dict]]:
    """The table's rows and the binlog position they are consistent with, with no global lock:
    MariaDB reports, in a transaction begun WITH CONSISTENT SNAPSHOT, the binlog position of that
    snapshot (binlog_snapshot_file / binlog_snapshot_position). Every change after it is in the
    binlog from that position on, and none before it is."""
    run = run or (lambda command, call: call())
    with conn.cursor() as cur:
        # The snapshot's read view and its binlog position are taken together, under the
        # server's commit lock, so no commit falls between them.
        run(
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            lambda: cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
        )
        try:
            statement = "SHOW STATUS LIKE 'binlog_snapshot_%'"
            status = {k.lower(): v for k, v in run(statement, lambda: (cur.execute(statement), cur.fetchall())[1])}
            position = Position(status["binlog_snapshot_file"], int(status["binlog_snapshot_position"]))
            statement = f"SELECT * FROM {quoted(table)} ORDER BY id"
            run(statement, lambda: cur.execute(statement))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            run("COMMIT", lambda: cur.execute("COMMIT"))
    return position, rows


@dataclass
class Reader:
    """The changes to `schema`.`table` from `start` on. Iterate it once, or call `read()` until it
    gives None; `position` is where the reader has read to (the next_position of the last change
    it gave), `read_to` how far the stream has read, counting the events it leaves out."""

    params: dict  # pymysql.connect() arguments: host, port, user, password (ssl_disabled kept)
    server_id: int  # as a replica: unique among the source's readers, not the source's own
    start: Position
    schema: str
    table: str
    blocking: bool = False  # wait for new events at the end of the binlog instead of stopping
    timeout: float | None = None  # seconds to connect and to wait for a read (a paused source)
    heartbeat: float | None = None  # blocking: the source says it has nothing new after this long
    reconnect: bool = True  # let the library connect again after a lost connection
    # Decode a table's map once per table id instead of at every transaction (python-mysql-
    # replication's freeze_schema): the server gives a table a new id when its definition changes
    # (an ALTER), and the ids of one binlog file are one server lifetime's, so the decoded maps are
    # dropped at every file's start.
    cache_table_maps: bool = False
    position: Position = field(init=False)
    read_to: Position = field(init=False)
    idle: bool = field(init=False, default=False)  # the last read waited for a heartbeat
    _stopped: threading.Event = field(init=False, default_factory=threading.Event)
    _stream: BinLogStreamReader | None = field(init=False, default=None)
    _streams: int = field(init=False, default=0)  # replication connections made
    _gtid: str | None = field(init=False, default=None)  # the GTID of the transaction being read

    def __post_init__(self):
        self.position = self.read_to = self.start

    def _connect(self, **settings: Any) -> Any:
        # The library reconnects on its own after a lost connection; once stopped, it must not.
        if self._stopped.is_set():
            raise ReaderStopped()
        if "db" not in settings:  # the replication connection (the library's other one reads schemas)
            if self._streams and not self.reconnect:
                raise pymysql.OperationalError(LOST, "the replication connection was lost")
            self._streams += 1
        return pymysql.connect(**settings)

    def _open(self) -> BinLogStreamReader:
        keys = ("host", "port", "user", "password", "ssl_disabled")
        settings = {k: self.params[k] for k in keys if k in self.params}
        if self.timeout is not None:
            settings.update(connect_timeout=self.timeout, read_timeout=self.timeout)
        wanted = [MariadbGtidEvent, QueryEvent, XidEvent, *ROW_EVENTS, *FILE_EVENTS]
        if self.heartbeat:
            wanted.append(HeartbeatLogEvent)
        self._stream = BinLogStreamReader(
            connection_settings=settings,
            server_id=self.server_id,
            log_file=self.start.file,
            log_pos=self.start.pos,
            resume_stream=True,
            blocking=self.blocking,
            slave_heartbeat=self.heartbeat if self.blocking else None,
            freeze_schema=self.cache_table_maps,
            only_events=wanted,
            only_schemas=[self.schema],
            only_tables=[self.table],
            pymysql_wrapper=self._connect,
            enable_logging=False,
        )
        return self._stream

    def __iter__(self) -> Iterator[Change]:
        try:
            while (changes := self.read()) is not None:
                yield from changes
        finally:
            self.close()

    def read(self) -> list[Change] | None:
        """The changes of the next binlog event: [] for one that changes nothing of the table (or
        a heartbeat), None at the end of the binlog (not blocking) or once stopped."""
        if self._stopped.is_set():
            return None
        stream = self._stream or self._open()
        began = time.monotonic()
        try:
            event = stream.fetchone()
        except ReaderStopped:
            return None
        except pymysql.MySQLError as exc:
            if self._stopped.is_set():
                return None
            if exc.args and exc.args[0] == PURGED:
                raise PositionPurged(self.position, str(exc.args[1])) from exc
            raise
        if event is None:  # the end of the binlog (not blocking)
            return None
        # A heartbeat the read waited for says the source has nothing more to send now; one that
        # waited in the socket while nobody read (between two steps) comes before newer events.
        waited = time.monotonic() - began
        self.idle = isinstance(event, HeartbeatLogEvent) and waited >= (self.heartbeat or 0.0) / 2
        if isinstance(event, FormatDescriptionEvent):  # a binlog file begins (or the stream does)
            stream.table_map.clear()
        if isinstance(event, (HeartbeatLogEvent, *FILE_EVENTS)):
            # The library follows the file and position of every event it reads, left out or not.
            if stream.log_file and stream.log_pos:
                self.read_to = max(self.read_to, Position(stream.log_file, stream.log_pos))
            return []
        file = stream.log_file
        after = Position(file, event.packet.log_pos)
        at = Position(file, event.packet.log_pos - event.event_size)
        common = {"position": at, "next_position": after, "timestamp": event.timestamp, "gtid": self._gtid}
        kind = type(event).__name__
        changes: list[Change] = []
        if isinstance(event, MariadbGtidEvent):
            self._gtid = event.gtid
        elif isinstance(event, XidEvent):
            changes.append(Change("commit", event=kind, xid=event.xid, **common))
            self._gtid = None
        elif isinstance(event, QueryEvent):
            changes.extend(self._query(event, kind, common))
        else:
            changes.extend(self._rows(event, kind, common))
        self.position = self.read_to = after
        return changes

    def _query(self, event: QueryEvent, kind: str, common: dict) -> list[Change]:
        sql = event.query
        if NOT_DDL.match(sql):
            return [Change("commit", event=kind, **common)] if sql.strip().upper() == "COMMIT" else []
        schema = event.schema.decode() if isinstance(event.schema, bytes) else event.schema
        named = DDL.match(sql)
        if schema != self.schema or not named or named.group(1) != self.table:
            # Another table's DDL is still a boundary the offset may move past.
            return [Change("commit", event=kind, **common)]
        return [Change("ddl", event=kind, sql=sql, **common)]

    def _rows(self, event: Any, kind: str, common: dict) -> list[Change]:
        if event.schema != self.schema or event.table != self.table:
            return []
        op = ROW_EVENTS[type(event)]
        out = []
        for r in event.rows:
            if op == "update":
                row, before = dict(r["after_values"]), dict(r["before_values"])
            else:
                row, before = dict(r["values"]), None
            out.append(Change(op, event=kind, id=row.get("id"), row=row, before=before, **common))
        return out

    def stop(self) -> None:
        """Ends the iteration from another thread: wakes a blocked read by shutting its socket."""
        self._stopped.set()
        conn = getattr(self._stream, "_stream_connection", None)
        sock = getattr(conn, "_sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
