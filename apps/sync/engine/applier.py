"""The CDC applier: a process of its own, as a Debezium connector or a replica's SQL thread is.

    python -m apps.sync.engine.applier      (the first line of stdin: its configuration, as JSON)

It reads its committed offset from B's `offsets` table, streams A's binlog from there, applies each
transaction to B (upsert or delete by id, so applying a change twice lands once), and commits the
offset again. The order of the last two steps is the lesson, the configuration's `mode`:

- after:  apply and commit B, then write the offset. Dying between them replays the transaction.
- before: write the offset, then apply. Dying between them loses the transaction.
- atomic: the offset row is written in the same B transaction as the applied rows: no gap, no replay.

With `workers` > 1 several appliers take the changes at once: from one shared queue (no key
affinity: whichever is free takes the next change), or `keyed`, each from its own queue chosen by a
hash of the row's id, so one key's changes stay in order.

It reports on stdout, one JSON line per step: {"event": {...}} is an event the engine records as it
is (every SQL statement is recorded through the engine API's `cmd`), {"report": ...} tells the
engine where it stands (a transaction applied, an offset committed, a crash coming). When stdin
closes (the engine stopped it, or died) it exits. On the crash schedule it SIGKILLs itself at the
named point, for real: what B and the offsets table hold then is what a crash leaves.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import pymysql

from apps.runs.engine_api import cmd, describe_error

from . import events
from .binlog import Change, Position, Reader
from .tables import UPSERT_B, table

OFFSETS = "offsets"  # B's table of committed offsets, one row per applier (its name)
OFFSETS_DDL = f"""CREATE TABLE IF NOT EXISTS {OFFSETS} (
  name VARCHAR(40) NOT NULL PRIMARY KEY,
  file VARCHAR(255) NOT NULL,
  pos BIGINT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB"""
READ_OFFSET = f"SELECT file, pos FROM {OFFSETS} WHERE name = %s"
WRITE_OFFSET = (
    f"INSERT INTO {OFFSETS} (name, file, pos, updated_at) VALUES (%s, %s, %s, NOW(6)) "
    "ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos), updated_at = VALUES(updated_at)"
)
DELETE = f"DELETE FROM {table('B')} WHERE id = %s"

MODES = ("after", "before", "atomic")
# Where each mode's crash falls: between the two writes whose order the mode is about.
CRASH_POINTS = {
    "after": "between committing the rows to B and committing its offset",
    "before": "between committing its offset and applying the rows",
    "atomic": "between applying the rows (offset row included) and committing that transaction",
}


@dataclass
class Config:
    source: dict  # pymysql.connect() arguments of A's server (an account that may read the binlog)
    target: dict  # ... and of B's server
    schema: str  # A's database
    target_db: str  # B's database
    start: dict  # where to stream from when no offset is committed yet (the snapshot's position)
    mode: str = "after"
    name: str = "applier"  # the offsets row, and the actor the events name
    life: int = 1  # which start of the applier this is (1 the first)
    crash_after: int | None = None  # SIGKILL itself at the crash point of this life's nth transaction
    workers: int = 1
    keyed: bool = False
    delays_ms: list = field(default_factory=list)  # each worker's extra time per change (uneven)
    server_id: int = 1001
    source_node: str = "db1"
    target_node: str = "db2"


class Out:
    """The stdout protocol, shared by the applier's threads (one line at a time)."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.began = time.monotonic()

    @property
    def clock(self) -> float:
        return round((time.monotonic() - self.began) * 1000.0, 2)

    def _line(self, message: dict) -> None:
        text = json.dumps(message, default=str)
        with self.lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def emit(self, kind: str, actor: str = "", to: str = "", label: str = "", data: Any = None, **fields: Any) -> None:
        self._line({"event": {"kind": kind, "actor": actor, "to": to, "label": label, "data": data, **fields}})

    def report(self, what: str, **data: Any) -> None:
        self._line({"report": what, **data})


def position(p: Position) -> dict:
    return p.as_dict()


@dataclass
class Transaction:
    """The changes to A of one source transaction, and where it ends (an offset may point there)."""

    changes: list[Change]
    start: Position
    end: Position


def transactions(reader: Reader) -> Any:
    """The reader's changes grouped by source transaction. A transaction that did not touch A comes
    with no changes: nothing to apply, but the applier is then known to have read past it."""
    pending: list[Change] = []
    for change in reader:
        if change.op in ("insert", "update", "delete"):
            pending.append(change)
        elif change.resumable:
            start = pending[0].position if pending else change.position
            yield Transaction(pending, start, change.next_position)
            pending = []


class Applier:
    def __init__(self, config: Config, out: Out):
        self.config, self.out = config, out
        self.actor = config.name
        self.applied_here = 0  # transactions taken in this life (the crash schedule counts them)

    # Connections and recorded statements ---------------------------------------------------------
    def connect_target(self) -> Any:
        params = dict(self.config.target, connect_timeout=5, read_timeout=30, autocommit=False)
        return pymysql.connect(database=self.config.target_db, **params)

    def sql(
        self, conn: Any, statement: str, args: Any = (), *, label: str | None = None, actor: str | None = None
    ) -> tuple:
        with conn.cursor() as cur:
            cmd(
                self.out.emit,
                actor or self.actor,
                self.config.target_node,
                label or statement,
                lambda: cur.execute(statement, args),
            )
            return cur.fetchall()

    def commit(self, conn: Any, actor: str | None = None) -> None:
        cmd(self.out.emit, actor or self.actor, self.config.target_node, "COMMIT", conn.commit)

    def read_offset(self, conn: Any) -> Position:
        rows = self.sql(conn, READ_OFFSET, (self.config.name,), label=f"SELECT offset of {self.config.name}")
        self.commit(conn)  # ends the read's transaction: what follows starts with a fresh view
        return Position(rows[0][0], int(rows[0][1])) if rows else Position.from_dict(self.config.start)

    def write_offset(self, conn: Any, at: Position) -> None:
        self.sql(conn, WRITE_OFFSET, (self.config.name, at.file, at.pos), label=f"UPDATE offset = {at}")

    def apply(self, conn: Any, change: Change, actor: str | None = None) -> None:
        row = change.row or {}
        if change.op == "delete":
            self.sql(conn, DELETE, (change.id,), label=f"DELETE FROM b id={change.id}", actor=actor)
        else:
            args = (row["id"], row["bkey"], row["value"], row["version"], row["updated_at"])
            label = f"UPSERT b id={change.id} v{row['version']}"
            self.sql(conn, UPSERT_B, args, label=label, actor=actor)

    def landed(self, change: Change, actor: str) -> None:
        """B's row changed: the page lights it up."""
        row = change.row or {}
        op = "delete" if change.op == "delete" else "upsert"
        version = None if op == "delete" else row.get("version")
        events.row(
            self.out, "B", op, change.id, bkey=row.get("bkey"), version=version, value=row.get("value"), by=actor
        )

    def taken(self, txn: Transaction) -> None:
        """The reader took a transaction off the binlog: the tape, and the reader's marker."""
        for c in txn.changes:
            events.tape(
                self.out,
                c.position.file,
                c.position.pos,
                c.event,
                [c.id],
                next_pos=c.next_position.pos,
                gtid=c.gtid,
                op=c.op,
                version=(c.row or {}).get("version"),
            )
        events.offsets(self.out, reader=position(txn.end), actor=self.actor)
        self.out.report("taken", start=position(txn.start), end=position(txn.end), changes=len(txn.changes))

    def crash_point(self) -> None:
        if self.config.crash_after is not None and self.applied_here == self.config.crash_after:
            self.out.report("crash", point=CRASH_POINTS[self.config.mode], life=self.config.life)
            os.kill(os.getpid(), signal.SIGKILL)

    # The loop --------------------------------------------------------------------------------------
    def run(self) -> None:
        conn = self.connect_target()
        self.sql(conn, OFFSETS_DDL, label="CREATE TABLE IF NOT EXISTS offsets")
        start = self.read_offset(conn)
        self.out.report("started", pid=os.getpid(), life=self.config.life, offset=position(start))
        events.offsets(self.out, reader=position(start), committed=position(start), actor=self.actor)
        # Whatever lies before the committed offset, this applier takes as done (rightly or not:
        # that is the question the offset modes answer).
        self.out.report("done", end=position(start))
        reader = Reader(
            self.config.source,
            server_id=self.config.server_id,
            start=start,
            schema=self.config.schema,
            table=table("A"),
            blocking=True,
        )
        if self.config.workers > 1:
            Parallel(self, conn).run(reader)
            return
        for txn in transactions(reader):
            if not txn.changes:
                self.out.report("done", end=position(txn.end))
                continue
            self.taken(txn)
            self.applied_here += 1
            getattr(self, f"apply_{self.config.mode}")(conn, txn)
            self.out.report("done", end=position(txn.end))

    def _apply_rows(self, conn: Any, txn: Transaction) -> None:
        for change in txn.changes:
            self.apply(conn, change)

    def _landed_all(self, txn: Transaction) -> None:
        for change in txn.changes:
            self.landed(change, self.actor)
        self.out.report("applied", start=position(txn.start), end=position(txn.end), changes=len(txn.changes))

    def _committed(self, at: Position) -> None:
        events.offsets(self.out, committed=position(at), actor=self.actor)
        self.out.report("committed", offset=position(at))

    def apply_after(self, conn: Any, txn: Transaction) -> None:
        # Two transactions on B: the rows, then the offset. A crash between them leaves the rows in
        # and the offset behind them, so the next life streams them again (a replay).
        self._apply_rows(conn, txn)
        self.commit(conn)
        self._landed_all(txn)
        self.crash_point()
        self.write_offset(conn, txn.end)
        self.commit(conn)
        self._committed(txn.end)

    def apply_before(self, conn: Any, txn: Transaction) -> None:
        # The offset first, in its own transaction: a crash before the rows leaves an offset past
        # changes B never got, and no later life will stream them again (a gap).
        self.write_offset(conn, txn.end)
        self.commit(conn)
        self._committed(txn.end)
        self.crash_point()
        self._apply_rows(conn, txn)
        self.commit(conn)
        self._landed_all(txn)

    def apply_atomic(self, conn: Any, txn: Transaction) -> None:
        # Rows and offset in one B transaction: a crash before its COMMIT rolls back both, so the
        # next life starts from the old offset with none of the rows in: nothing lost, nothing twice.
        self._apply_rows(conn, txn)
        self.write_offset(conn, txn.end)
        self.crash_point()
        self.commit(conn)
        self._landed_all(txn)
        self._committed(txn.end)


class Parallel:
    """Several appliers on one stream. The dispatcher numbers the transactions and hands out their
    changes; each worker applies and commits a change on its own connection; the offset moves to
    the end of the newest transaction all of whose changes, and all before it, are in B (what
    Kafka Connect does for a task's offsets), so a restart replays and never skips."""

    def __init__(self, applier: Applier, conn: Any):
        self.applier, self.conn = applier, conn
        self.config = applier.config
        n = self.config.workers
        self.names = [f"{self.config.name}-w{i + 1}" for i in range(n)]
        # Keyed: a queue per worker, chosen by the key's hash. Not keyed: one queue, whoever is free.
        self.queues = [queue.Queue() for _ in range(n)] if self.config.keyed else [queue.Queue()] * n
        self.done: queue.Queue = queue.Queue()

    def route(self, change: Change) -> queue.Queue:
        if not self.config.keyed:
            return self.queues[0]
        return self.queues[zlib.crc32(str(change.id).encode()) % len(self.queues)]

    def run(self, reader: Reader) -> None:
        for i, name in enumerate(self.names):
            threading.Thread(target=self.guarded, args=(name, self.work, i), name=name, daemon=True).start()
        threading.Thread(target=self.guarded, args=("offsets", self.commit_offsets), daemon=True).start()
        for seq, txn in enumerate(transactions(reader)):
            if not txn.changes:  # nothing to apply: done as soon as all before it are
                self.done.put((seq, txn))
                continue
            self.applier.taken(txn)
            for change in txn.changes:
                self.route(change).put((seq, txn, change))

    def guarded(self, name: str, body: Any, *args: Any) -> None:
        try:
            body(*args)
        except Exception as exc:  # one thread down takes the applier down: the engine restarts it
            self.applier.out.report("error", error=f"{name}: {describe_error(exc)}")
            os._exit(1)

    def work(self, i: int) -> None:
        name = self.names[i]
        conn = self.applier.connect_target()
        delay = (self.config.delays_ms[i] if i < len(self.config.delays_ms) else 0) / 1000.0
        own = self.queues[i]
        while True:
            seq, txn, change = own.get()
            # This worker's apply takes longer than the others' (a busier connection, a bigger
            # batch): the race between them is what the scenario is about.
            if delay:
                time.sleep(delay)
            self.applier.apply(conn, change, actor=name)
            self.applier.commit(conn, actor=name)
            self.applier.landed(change, name)
            self.done.put((seq, txn))

    def commit_offsets(self) -> None:
        left: dict[int, int] = {}  # seq -> changes of it not yet in B
        txns: dict[int, Transaction] = {}
        next_seq = 0
        while True:
            seq, txn = self.done.get()
            txns[seq] = txn
            left[seq] = left.get(seq, max(1, len(txn.changes))) - 1
            moved = None
            while left.get(next_seq) == 0:
                moved = txns.pop(next_seq)
                del left[next_seq]
                if moved.changes:
                    start, end = position(moved.start), position(moved.end)
                    self.applier.out.report("applied", start=start, end=end, changes=len(moved.changes))
                next_seq += 1
            if moved is not None:
                self.applier.write_offset(self.conn, moved.end)
                self.applier.commit(self.conn)
                self.applier._committed(moved.end)
                self.applier.out.report("done", end=position(moved.end))


def read_config(line: str) -> Config:
    data = json.loads(line)
    config = Config(**data)
    if config.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    return config


def exit_when_stdin_closes() -> None:
    """The engine holds the other end of stdin: it closes it to stop the applier, and the kernel
    closes it when the engine dies, so an applier never outlives its run."""
    for _ in sys.stdin:
        pass
    os._exit(0)


def main() -> int:
    out = Out()
    try:
        config = read_config(sys.stdin.readline())
    except (ValueError, TypeError) as exc:
        out.report("error", error=f"bad configuration: {exc}")
        return 2
    threading.Thread(target=exit_when_stdin_closes, name="stdin", daemon=True).start()
    try:
        Applier(config, out).run()
    except Exception as exc:  # reported for the engine to record; it decides to start it again
        out.report("error", error=describe_error(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
