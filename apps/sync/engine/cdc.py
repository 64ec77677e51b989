"""Change data capture in the run's own process, as Debezium does it: a consistent snapshot of A
with its binlog position, then A's binlog streamed from that position into B. Plain Python.

Each step drains the binlog to where it ended when the step began (so a run stays steppable and
pausable), and applies the source transactions it read to B in batches: each batch's rows (upsert
by id, delete by id) and the offset after its last transaction in one transaction of B, so B and
its offset never disagree. The replication stream stays open from one step to the next; it is
opened at the committed offset read back from B, and dropped with whatever it read past that
offset when a step fails, the reader goes down or a snapshot is taken. The offsets
live in B's server, in `sync_offsets`: `reader` (how far the binlog had been read when B last
committed) and `committed` (up to where B holds it); the page's markers part while a transaction
is read and meet when it is applied. A step that fails (the target killed or cut off, the source paused) changes
nothing the next step cannot redo: it starts again from the committed offset, read back from B.

When the source no longer has the binlog at the committed offset (error 1236, purged while the
reader was down), the syncer says so and takes a new snapshot, replacing B in one transaction,
instead of skipping the changes it can no longer read.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pymysql

from apps.runs.engine_api import describe_error

from . import binlog, driver, events
from .driver import UNREACHABLE
from .tables import COLUMNS, Pair, table

ACTOR = "cdc"
ACCOUNT = "cdc"  # the reader's account on the source: REPLICATION SLAVE, BINLOG MONITOR, SELECT
SERVER_ID = 1001  # the reader's id as a replica (the source is 1)
READ_TIMEOUT_S = 10.0
# The source sends a heartbeat when it has had nothing to send this long: a step that has read
# everything but events left out of the stream ends on it instead of waiting for the next change.
HEARTBEAT_S = 0.1
# A stream left unread this long (a paused run) is opened again from the committed offset rather
# than read on: the source drops a replica that does not read its heartbeats for long.
STALE_STREAM_S = 20.0
B = table("B")
OFFSETS = "sync_offsets"
OFFSETS_DDL = f"""CREATE TABLE IF NOT EXISTS {OFFSETS} (
  name VARCHAR(16) NOT NULL PRIMARY KEY,
  file VARCHAR(64) NOT NULL,
  pos BIGINT NOT NULL,
  gtid VARCHAR(64) NULL,
  saved_at DATETIME(6) NOT NULL
) ENGINE=InnoDB"""
SAVE_OFFSET = (
    f"INSERT INTO {OFFSETS} (name, file, pos, gtid, saved_at) VALUES (%s, %s, %s, %s, NOW(6)) "
    "ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos), gtid = VALUES(gtid), saved_at = NOW(6)"
)
# The one kind of DDL the applier repeats on B: a new column of a plain type, with its default.
ADD_COLUMN = re.compile(
    r"^\s*ALTER\s+TABLE\s+`?a`?\s+ADD\s+(?:COLUMN\s+)?`?([a-z_][a-z0-9_]{0,63})`?\s+"
    r"((?:VARCHAR\(\d{1,4}\)|INT|BIGINT)(?:\s+NOT\s+NULL)?(?:\s+DEFAULT\s+(?:'[A-Za-z0-9 _-]*'|-?\d+))?)\s*$",
    re.IGNORECASE,
)
DUPLICATE_COLUMN = 1060
APPLY_BATCH = 200  # source transactions applied to B in one transaction of B, at most
BATCH_AGE_S = 0.02  # ... and a batch is applied once its first transaction was read this long ago


class CdcSyncer:
    """Snapshot, then the binlog into B. `start()` takes the snapshot, each `step()` drains."""

    actor = ACTOR

    def __init__(self, ctx: Any, pair: Pair, workload: Any = None):
        self.ctx, self.pair = ctx, pair
        self.node_a, self.node_b = pair.source_node, pair.target_node
        self.password = secrets.token_hex(12)
        self.columns = list(COLUMNS)  # B's columns, in order; a mirrored ADD COLUMN appends one
        self.target: Any = None
        self.reader_at: binlog.Position | None = None
        self.committed: binlog.Position | None = None
        self.reader_down = False  # a scenario stops the reader for a while
        self.stream: binlog.Reader | None = None  # the replication stream, open between steps
        self.streamed_at = 0.0  # when the stream was last read (time.monotonic())
        self.source_conn: Any = None  # to ask the source where its binlog ends
        self.batch: list = []  # source transactions read but not yet applied: (changes, commit)
        self.batch_since = 0.0  # when the batch's first transaction was read
        self.pending: list[binlog.Change] = []  # the row changes of a transaction not yet committed
        self.counts = {"transactions": 0, "inserts": 0, "updates": 0, "deletes": 0, "ddl": 0}
        self.snapshots: list[dict] = []
        self.purged: list[dict] = []
        self.failed_steps = 0
        self.lags: list[float] = []

    # Connections ---------------------------------------------------------------------------------
    def reader_params(self) -> dict:
        return {**self.pair.params("A"), "user": ACCOUNT, "password": self.password}

    def _reader_connect(self, **options: Any) -> Any:
        """A plain connection to the source with the reader's account (not through the run's pool)."""
        params = self.reader_params()
        keys = ("host", "port", "user", "password", "ssl_disabled")
        return pymysql.connect(
            **{k: params[k] for k in keys if k in params},
            connect_timeout=READ_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            **options,
        )

    def _target(self) -> Any:
        """B's connection, made again when a fault broke the last one; B's writes are explicit
        transactions (rows and offset together)."""
        if self.target is None:
            self.target = self.pair.target(autocommit=False, read_timeout=READ_TIMEOUT_S)
        return self.target

    def close(self) -> None:
        self._close_stream()
        self._drop_target()

    def _close_stream(self) -> None:
        """The stream dropped, with what it had read past the committed offset: the next step
        opens it again at the offset B holds."""
        self.batch, self.pending = [], []
        if self.stream is not None:
            try:
                self.stream.close()
            except Exception:  # noqa: BLE001 - a connection a fault broke may not close cleanly
                pass
            self.stream = None
        if self.source_conn is not None:
            try:
                self.source_conn.close()
            except Exception:  # noqa: BLE001 - as above
                pass
            self.source_conn = None

    def _drop_target(self) -> None:
        if self.target is not None:
            try:
                self.target.close()
            except Exception:  # noqa: BLE001 - a connection a fault broke may not close cleanly
                pass
            self.target = None

    def _run(self, node: str, conn: Any, statement: str, args: Any = (), label: str | None = None, many=False):
        with conn.cursor() as cur:
            call = (lambda: cur.executemany(statement, args)) if many else (lambda: cur.execute(statement, args))
            self.ctx.cmd(node, label or statement, call, actor=self.actor)
            return cur.fetchall() if cur.description else cur.rowcount

    # Start: the account, the offsets table, the first snapshot -----------------------------------
    def start(self) -> None:
        admin = self.pair.source()
        try:
            self.ctx.cmd(
                self.node_a,
                f"CREATE USER {ACCOUNT}; GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.*",
                lambda: binlog.create_account(admin, ACCOUNT, self.password),
                actor=self.actor,
            )
        finally:
            admin.close()
        conn = self.pair.target()
        try:
            self._run(self.node_b, conn, OFFSETS_DDL, label=f"CREATE TABLE {OFFSETS}")
        finally:
            conn.close()
        self.take_snapshot("the first snapshot")

    def take_snapshot(self, why: str) -> None:
        """A consistent snapshot of A and its binlog position; B replaced by it, and both offsets
        set to the position, in one transaction of B."""
        self._close_stream()  # it streams from the old position
        conn = self._reader_connect(database=self.pair.database("A"), autocommit=True)
        try:
            position, rows = binlog.snapshot(
                conn, table("A"), lambda command, call: self.ctx.cmd(self.node_a, command, call, actor=self.actor)
            )
        finally:
            conn.close()
        target = self._target()
        names = [c for c in self.columns if not rows or c in rows[0]]
        # B takes the snapshot whole or not at all: deleting and reloading in one transaction means
        # no reader of B sees it half done, and a failure leaves the previous B and offsets.
        self._run(self.node_b, target, "BEGIN")
        self._run(self.node_b, target, f"DELETE FROM {B}")
        if rows:
            self._run(
                self.node_b,
                target,
                self._upsert(names),
                [tuple(r[c] for c in names) for r in rows],
                label=f"INSERT {len(rows)} snapshot rows INTO b",
                many=True,
            )
        self._save_offsets(target, position, position, None)
        self.ctx.cmd(self.node_b, "COMMIT", target.commit, actor=self.actor)
        self.reader_at = self.committed = position
        self.snapshots.append({"why": why, "position": position.as_dict(), "rows": len(rows)})
        self.ctx.emit(
            "state",
            actor=self.actor,
            label=f"{why}: {len(rows)} rows at {position}",
            data={"type": "snapshot", "position": position.as_dict(), "rows": len(rows), "why": why},
        )
        events.offsets(self.ctx, reader=position.as_dict(), committed=position.as_dict(), actor=self.actor)

    def _upsert(self, names: list[str]) -> str:
        cols = ", ".join(binlog.quoted(c) for c in names)
        marks = ", ".join(["%s"] * len(names))
        updates = ", ".join(f"{binlog.quoted(c)} = VALUES({binlog.quoted(c)})" for c in names if c != "id")
        return f"INSERT INTO {B} ({cols}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {updates}"

    def _save_offsets(self, conn: Any, reader: binlog.Position, committed: binlog.Position, gtid) -> None:
        self._run(
            self.node_b,
            conn,
            SAVE_OFFSET,
            [("reader", reader.file, reader.pos, gtid), ("committed", committed.file, committed.pos, gtid)],
            label=f"UPDATE {OFFSETS}: read to {reader}, committed {committed}",
            many=True,
        )

    def durable_offset(self) -> binlog.Position:
        """The committed offset as B's server holds it (what a restarted applier would start from)."""
        rows = self._run(self.node_b, self._target(), f"SELECT file, pos FROM {OFFSETS} WHERE name = 'committed'")
        self.ctx.cmd(self.node_b, "COMMIT", self.target.commit, actor=self.actor)  # ends the read
        if not rows:
            raise RuntimeError(f"{OFFSETS} has no committed offset: the snapshot never finished")
        return binlog.Position(rows[0][0], int(rows[0][1]))

    # Steps ----------------------------------------------------------------------------------------
    def step(self) -> None:
        if self.reader_down:
            self._close_stream()  # a reader that is down holds no replication connection
            return
        try:
            self.drain()
        except binlog.PositionPurged as exc:
            self.purged.append({"position": exc.position.as_dict(), "error": str(exc)})
            self.ctx.emit(
                "state",
                actor=self.actor,
                label=f"the binlog at {exc.position} is purged (1236): the changes since are lost to the "
                "reader, so B is snapshotted again",
                data={"type": "purged", "position": exc.position.as_dict(), "error": str(exc)},
            )
            self._close_stream()
            self._rollback()
            self._guarded(lambda: self.take_snapshot("a new snapshot after 1236"))
        except UNREACHABLE as exc:
            self._failed(exc)

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except UNREACHABLE as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.failed_steps += 1
        self._close_stream()
        self._rollback()
        self._drop_target()
        events.retry(self.ctx, self.actor, "stream the binlog into B", self.failed_steps, 0.0, describe_error(exc))

    def _rollback(self) -> None:
        if self.target is not None:
            try:
                self.target.rollback()
            except Exception:  # noqa: BLE001 - the connection may be gone with the error
                self._drop_target()

    def _open_stream(self) -> binlog.Reader:
        """The replication stream, opened at the durable committed offset when there is none (or
        it went unread so long that the source may have dropped it)."""
        if self.stream is not None and time.monotonic() - self.streamed_at > STALE_STREAM_S:
            self._close_stream()
        if self.stream is None:
            self.stream = binlog.Reader(
                self.reader_params(),
                SERVER_ID,
                self.durable_offset(),
                self.pair.database("A"),
                table("A"),
                blocking=True,
                timeout=READ_TIMEOUT_S,
                heartbeat=HEARTBEAT_S,
                reconnect=False,  # a lost stream fails the step, which starts again from B's offset
                cache_table_maps=True,  # the table's map decoded once, not at every transaction
            )
            self.reader_at = self.stream.start
            self.streamed_at = time.monotonic()
        return self.stream

    def _binlog_end(self) -> binlog.Position:
        """Where the source's binlog ends now: how far this step reads."""
        if self.source_conn is None:
            self.source_conn = self._reader_connect(autocommit=True)
        conn = self.source_conn
        return self.ctx.cmd(self.node_a, "SHOW MASTER STATUS", lambda: binlog.current_position(conn), actor=self.actor)

    def drain(self) -> None:
        """Reads the binlog to where it ends now, applying the source transactions read to B in
        batches, each with its offset, atomically. Whatever fails drops the stream with what it
        read and not applied: nothing is skipped, nothing applied twice."""
        try:
            stream = self._open_stream()
            end = self._binlog_end()
            while stream.read_to < end:
                changes = stream.read()
                self.streamed_at = time.monotonic()
                if changes is None or stream.idle:  # stopped, or the source has sent all it has
                    break
                if changes:  # one binlog event's changes (a rows event has a row each)
                    self._take(changes)
                if self.batch and (
                    len(self.batch) >= APPLY_BATCH or time.monotonic() - self.batch_since >= BATCH_AGE_S
                ):
                    self.flush()
            self.flush()
        except BaseException:
            self._close_stream()
            raise
        events.offsets(self.ctx, reader=self.reader_at.as_dict(), committed=self.committed.as_dict(), actor=self.actor)

    def _take(self, event: list[binlog.Change]) -> None:
        """One binlog event onto the tape and into B: row changes wait for their transaction's
        commit, and a committed transaction for its batch."""
        first = event[0]
        ids = [c.id for c in event if c.id is not None]
        events.tape(
            self.ctx,
            first.position.file,
            first.position.pos,
            first.event,
            ids,
            next_pos=first.next_position.pos,
            gtid=first.gtid,
            op=first.op,
        )
        self.reader_at = first.next_position
        if first.op == "ddl":
            self.flush()  # the transactions before it land with the schema they were written in
            self.apply_ddl(first)
        elif first.op == "commit":
            if not self.batch:
                self.batch_since = time.monotonic()
            self.batch.append((self.pending, first))
            self.pending = []
        else:
            self.pending.extend(event)

    def flush(self) -> None:
        """The source transactions read so far into B, with the offset after the last of them, in
        one transaction of B: if it fails, neither the rows nor the offset moved, and the stream
        is opened again at the offset. (One transaction of B per source transaction would cost a
        durable commit each: at a thousand writes a second the applier would fall behind.) The
        rows go in as few statements as keep their order: a run of upserts is one multi-row
        INSERT … ON DUPLICATE KEY UPDATE, which applies its rows one after another (a later
        version of a row wins), and a run of deletes one DELETE … IN."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        target = self._target()  # autocommit off: the statements below are one transaction
        for (op, names), run in runs((c for changes, _ in batch for c in changes), self.columns):
            if op == "delete":
                ids = [c.id for c in run]
                marks = ", ".join(["%s"] * len(ids))
                self._run(
                    self.node_b, target, f"DELETE FROM {B} WHERE id IN ({marks})", ids, label=f"DELETE b {shown(run)}"
                )
            else:
                rows = [tuple(c.row[n] for n in names) for c in run]
                self._run(
                    self.node_b, target, self._upsert(list(names)), rows, label=f"UPSERT b {shown(run)}", many=True
                )
        last = batch[-1][1]
        self._save_offsets(target, last.next_position, last.next_position, last.gtid)
        self.ctx.cmd(self.node_b, "COMMIT", target.commit, actor=self.actor)
        self.committed = last.next_position
        for changes, commit in batch:
            self.applied(changes, commit)
        events.offsets(self.ctx, reader=self.reader_at.as_dict(), committed=self.committed.as_dict(), actor=self.actor)

    def applied(self, changes: list[binlog.Change], commit: binlog.Change) -> None:
        """What one source transaction changed in B, told to the page."""
        for c in changes:
            self.counts[{"insert": "inserts", "update": "updates", "delete": "deletes"}[c.op]] += 1
            row = c.row or {}
            events.row(
                self.ctx,
                "B",
                "delete" if c.op == "delete" else "upsert",
                c.id,
                bkey=row.get("bkey"),
                version=None if c.op == "delete" else row.get("version"),
                value=None if c.op == "delete" else row.get("value"),
                by=self.actor,
            )
        if changes:
            self.counts["transactions"] += 1
            self._lag(changes, commit)

    def _lag(self, changes: list[binlog.Change], commit: binlog.Change) -> None:
        """From the change's commit on A to its apply on B. The binlog stamps events to the second;
        a row's updated_at is to the microsecond but a late transaction stamps its start, so the
        commit time is the later of the two (both servers and this process share one clock)."""
        committed_at = datetime.fromtimestamp(commit.timestamp)
        for c in changes:
            stamp = (c.row or {}).get("updated_at")
            if c.op != "delete" and isinstance(stamp, datetime) and stamp > committed_at:
                committed_at = stamp
        ms = max(0.0, (datetime.now() - committed_at).total_seconds() * 1000.0)
        self.lags.append(round(ms, 1))
        events.lag(self.ctx, ms, actor=self.actor)

    def apply_ddl(self, change: binlog.Change) -> None:
        """A schema change of A repeated on B when it is one the applier knows (ADD COLUMN), then
        the offset moved past it. DDL commits on its own, so on a replay the column may be there
        already: that counts as done."""
        target = self._target()
        match = ADD_COLUMN.match(change.sql or "")
        if match is None:
            self.ctx.emit("log", actor=self.actor, label=f"not repeated on B (only ADD COLUMN is): {change.sql}")
        else:
            name, definition = match.group(1).lower(), match.group(2)
            statement = f"ALTER TABLE {B} ADD COLUMN {binlog.quoted(name)} {definition}"
            try:
                self._run(self.node_b, target, statement)
            except pymysql.MySQLError as exc:
                if not exc.args or exc.args[0] != DUPLICATE_COLUMN:
                    raise
            if name not in self.columns:
                self.columns.append(name)
            self.counts["ddl"] += 1
            self.ctx.emit(
                "state",
                actor=self.actor,
                label=f"B gets column {name}: rows after {change.position} carry it",
                data={"type": "schema", "table": "B", "column": name, "position": change.position.as_dict()},
            )
        # The DDL committed on its own; the offset moves past it in a transaction of its own.
        self._run(self.node_b, target, "BEGIN")
        self._save_offsets(target, change.next_position, change.next_position, change.gtid)
        self.ctx.cmd(self.node_b, "COMMIT", target.commit, actor=self.actor)
        self.committed = change.next_position

    def result(self) -> dict:
        return {
            "snapshots": self.snapshots,
            "purged": self.purged,
            "applied": dict(self.counts),
            "failed_steps": self.failed_steps,
            "offset": self.committed.as_dict() if self.committed else None,
            "columns": list(self.columns),
            "lag_ms_max": max(self.lags) if self.lags else None,
        }


def runs(changes, columns: list[str]) -> list[tuple[tuple[str, tuple], list[binlog.Change]]]:
    """Consecutive changes of one kind: deletes, or upserts of the same of B's `columns` (a
    mirrored ADD COLUMN gives later rows one more), each run with its kind, in the order read."""
    out: list = []
    for c in changes:
        key = ("delete", ()) if c.op == "delete" else ("upsert", tuple(n for n in columns if n in c.row))
        if out and out[-1][0] == key:
            out[-1][1].append(c)
        else:
            out.append((key, [c]))
    return out


def shown(run: list[binlog.Change], most: int = 3) -> str:
    """A statement's rows as its label names them: `id=7 v3, id=9 v1 … (12 rows)`."""
    parts = [f"id={c.id}" + ("" if c.op == "delete" else f" v{c.row.get('version')}") for c in run[:most]]
    more = f" … ({len(run)} rows)" if len(run) > most else ""
    return ", ".join(parts) + more


# The run ------------------------------------------------------------------------------------------
Hook = Callable[[int, CdcSyncer], None]


def run_cdc(ctx: Any, *, before_step: Hook | None = None, syncer_class: type[CdcSyncer] = CdcSyncer) -> dict:
    """The driver's run with the CDC syncer: the syncer redoes a failed step from its durable
    offset, and the run brings both servers back before it catches up."""
    return driver.run_sync(ctx, syncer_class, before_step=before_step, start_label="snapshot A, then stream its binlog")


# What the scenarios do to A while the syncer streams ---------------------------------------------
ADDED_COLUMN = "note"
ALTER_LOCK_WAIT_S = 5
LOCK_WAIT_TIMEOUT = 1205
ALTER = f"ALTER TABLE a ADD COLUMN {ADDED_COLUMN} VARCHAR(32) NOT NULL DEFAULT ''"
# Every row gets a value only the new column can hold, so a row mapped with the wrong schema shows.
BACKFILL = f"UPDATE a SET {ADDED_COLUMN} = CONCAT('note-', id)"


class SchemaChange:
    """`ALTER TABLE a ADD COLUMN` on the source while the syncer streams, then a backfill of the
    new column: at step `at`, or when the instructor presses "run the ALTER" first. An ALTER waits
    for the metadata lock of every open transaction on the table (the long one), so it is given
    a few seconds and refused with the server's answer if it does not get it."""

    def __init__(self, ctx: Any, at: int):
        self.ctx, self.at = ctx, at
        self.done = False
        ctx.on_fault("alter", self.on_fault)

    def before_step(self, i: int, syncer: CdcSyncer) -> None:
        if i >= self.at and not self.done:
            try:
                self.alter()
            except (ValueError, *UNREACHABLE) as exc:  # a fault on the source: the next step tries again
                self.ctx.emit("log", actor="dba", label=f"the ALTER did not run: {describe_error(exc)}")

    def on_fault(self, target: str, **options: Any) -> dict:
        if self.done:
            raise ValueError("the ALTER already ran")
        self.alter()
        return {"sql": ALTER}

    def alter(self) -> None:
        pair = Pair(self.ctx.nodes)
        conn = pair.source()
        try:
            with conn.cursor() as cur:
                for statement in (f"SET SESSION lock_wait_timeout = {ALTER_LOCK_WAIT_S}", ALTER, BACKFILL):
                    self.ctx.cmd(pair.source_node, statement, lambda s=statement: cur.execute(s), actor="dba")
        except pymysql.MySQLError as exc:
            if exc.args and exc.args[0] == LOCK_WAIT_TIMEOUT:
                raise ValueError(f"the ALTER waited for a transaction open on a: {describe_error(exc)}") from exc
            raise
        finally:
            conn.close()
        self.done = True
        self.ctx.emit(
            "state",
            actor="A",
            label=f"A gets column {ADDED_COLUMN}, every row a value in it",
            data={"type": "schema", "table": "A", "column": ADDED_COLUMN, "sql": ALTER},
        )


class ReaderOutage:
    """The reader stops at step `down`; while it is down the source rotates its binlog and purges
    the files the reader still needed; at step `up` it comes back to a position that is gone."""

    def __init__(self, ctx: Any, down: int, up: int):
        self.ctx, self.down, self.up = ctx, down, up
        self.purged_to: binlog.Position | None = None

    def before_step(self, i: int, syncer: CdcSyncer) -> None:
        if i == self.down:
            syncer.reader_down = True
            self.ctx.emit(
                "state",
                actor=syncer.actor,
                label=f"the reader is down, its offset at {syncer.committed}",
                data={"type": "reader", "state": "down", "committed": syncer.committed.as_dict()},
            )
        if i >= self.up and self.purged_to is None:
            try:
                self.purge(syncer.pair)
            except (RuntimeError, *UNREACHABLE) as exc:  # a fault on the source: the next step tries again
                self.ctx.emit("log", actor="dba", label=f"the purge did not run: {describe_error(exc)}")
                return
            syncer.reader_down = False
            self.ctx.emit(
                "state",
                actor=syncer.actor,
                label="the reader starts again from its committed offset",
                data={"type": "reader", "state": "up", "committed": syncer.committed.as_dict()},
            )

    def purge(self, pair: Pair) -> None:
        conn = pair.source()
        try:

            def run(command: str, call: Callable[[], Any]) -> Any:
                return self.ctx.cmd(pair.source_node, command, call, actor="dba")

            self.purged_to = binlog.rotate_and_purge(conn, run)
            files = self.ctx.cmd(pair.source_node, "SHOW BINARY LOGS", lambda: binlog.binlog_files(conn), actor="dba")
        finally:
            conn.close()
        self.ctx.emit(
            "state",
            actor="A",
            label=f"the source purged its binlog up to {self.purged_to.file}",
            data={"type": "purge", "begins": self.purged_to.as_dict(), "files": files},
        )
