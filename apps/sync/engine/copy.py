"""The chunked full copy of A into B: keyset pagination over A's primary key (`WHERE id > %s ORDER BY
id LIMIT %s`), each chunk written to B in one transaction, a chunk that fails retried through
tenacity with exponential backoff and full jitter. Two ways of writing a chunk:

- idempotent (B keyed by A's id): `INSERT … ON DUPLICATE KEY UPDATE`, and in the same transaction
  the ids B holds in the chunk's key range that A no longer has are deleted. A chunk written twice
  lands once, so every pass copies the whole table again and updates and deletes reach B (at the
  cost of rewriting every row on every pass).
- plain INSERT (B with a key of its own): a row written twice is two rows, so the copy cannot copy
  again what it copied. It keeps a mark, the last id of the last chunk whose COMMIT was
  acknowledged, and each pass copies the rows past it: it never sees an update or a delete, and a
  chunk whose COMMIT succeeded but whose reply was lost is written a second time.

The idempotent copy has a second writer, `load-data`, for copies of a size where converting every
value to Python and escaping it back (what executemany does) is the cost: each chunk is read from
A as one value, its rows as tab-separated lines joined by the source server, and streamed into B
by `LOAD DATA LOCAL INFILE … REPLACE` (REPLACE: a row B has is replaced, so a retried chunk lands
once, like the upsert), in the same transaction as the deletes. With `parallel` above 1 the chunks
are still read one after another by keyset pagination, and written that many at a time, each on
a target connection of its own.

Plain Python.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential, wait_random_exponential

from apps.runs.engine_api import NodeDown, describe_error

from . import events
from .driver import UNREACHABLE
from .tables import Pair, execute, table

A, B = table("A"), table("B")
COLUMNS = "id, bkey, value, version, updated_at"
READ_CHUNK = f"SELECT {COLUMNS} FROM {A} WHERE id > %s ORDER BY id LIMIT %s"
INSERT = f"INSERT INTO {B} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
UPSERT = (
    INSERT + " ON DUPLICATE KEY UPDATE bkey = VALUES(bkey), value = VALUES(value), "
    "version = VALUES(version), updated_at = VALUES(updated_at)"
)
WRITERS = ("upsert", "load-data")  # the idempotent copy's ways of writing a chunk


# A chunk of A in one value, joined by the source server: no value of it is converted to Python.
# The fields are separated by the byte 0xFF and each row ends in 0xFE, two bytes that never occur
# in UTF-8 and so in no value; the LOAD DATA escaping is then done here on the bytes (a value's
# backslash, tab or newline escaped, the separators made tabs and newlines), which is much cheaper
# than escaping every value in SQL. COUNT(*) and MAX(id) are the keyset's (how many rows, where
# the next chunk starts). The lines need no order: REPLACE lands each row by its id.
FIELD, LINE = b"\xff", b"\xfe"


def as_bytes(column: str) -> str:
    return f"CAST(CONVERT({column} USING utf8mb4) AS BINARY)"


READ_LINES = (
    "SELECT COUNT(*), MAX(id), GROUP_CONCAT(line SEPARATOR '') FROM (SELECT id, CONCAT(CONCAT_WS(X'FF', "
    f"CAST(id AS BINARY), {as_bytes('bkey')}, {as_bytes('value')}, CAST(version AS BINARY), "
    f"CAST(updated_at AS BINARY)), X'FE') AS line FROM {A} WHERE id > %s ORDER BY id LIMIT %s) AS chunk"
)


def load_data_lines(joined: bytes) -> bytes:
    """The server's joined rows as LOAD DATA lines (tab-separated fields, escaped by backslash)."""
    escaped = joined.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n")
    return escaped.replace(FIELD, b"\t").replace(LINE, b"\n")[:-1]


UNESCAPES = {"t": "\t", "n": "\n"}


def unescape(field: str) -> str:
    """A LOAD DATA field's value (for the `row` events of a chunk that was streamed)."""
    return re.sub(r"\\(.)", lambda m: UNESCAPES.get(m[1], m[1]), field, flags=re.S)


# REPLACE: a row B already has (a retried chunk, a second pass) is replaced, never doubled.
LOAD_DATA = (
    f"LOAD DATA LOCAL INFILE %s REPLACE INTO TABLE {B} CHARACTER SET utf8mb4 "
    rf"FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' ({COLUMNS})"
)
# GROUP_CONCAT's limit is 1 MB by default: room for a chunk of the largest size (100,000 rows of
# the lab's are ~7 MB). The value must also fit the server's max_allowed_packet (16 MB by default).
GROUP_CONCAT_MAX_LEN = 1 << 30
# What a retry can mend: the connection lost, killed or refused, a deadlock, a lock wait timeout.
# A wrong statement (ProgrammingError) fails the same way every time, so it is not retried. Named
# from the package, not pymysql.err: under Django that can be a second copy of the module whose
# classes are not the ones pymysql raises.
RETRYABLE = UNREACHABLE


class SeededJitter(wait_random_exponential):
    """tenacity's exponential backoff with full jitter: before retry n the wait is drawn uniformly
    from [0, min(max, multiplier * 2^(n-1))]. Drawn from the run's seeded generator rather than the
    `random` module, so that a seed replays the same waits."""

    def __init__(self, rng: random.Random, multiplier: float, max: float):
        super().__init__(multiplier=multiplier, max=max)
        self.rng = rng

    def cap(self, attempt: int) -> float:
        """The top of the window the wait after failed attempt `attempt` is drawn from, in s."""
        return min(self.max, self.multiplier * self.exp_base ** (attempt - 1))

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.rng.uniform(0, wait_exponential.__call__(self, retry_state))


@dataclass(frozen=True)
class Retries:
    """How a chunk is retried: tries in all, and the backoff's first window and its largest, in s."""

    attempts: int = 5
    first_s: float = 0.05
    max_s: float = 1.0


@dataclass(frozen=True)
class Chunk:
    """One chunk of A read by keyset pagination: its rows as tuples (the INSERT writers), or as
    LOAD DATA lines (load-data), with how many there are and the last id."""

    count: int
    last_id: int | None
    rows: list[tuple] | None = None
    lines: bytes | None = None

    def ids(self) -> set[int]:
        if self.rows is not None:
            return {row[0] for row in self.rows}
        return {int(line.split(b"\t", 1)[0]) for line in self.lines.split(b"\n")} if self.count else set()

    def tuples(self) -> list[tuple]:
        """The rows as (id, bkey, value, version, updated_at), parsed back from the lines if need be
        (only for the `row` events of a copy people watch)."""
        if self.rows is not None:
            return self.rows
        out = []
        for line in self.lines.decode().split("\n") if self.count else ():
            id, bkey, value, version, updated_at = (unescape(field) for field in line.split("\t"))
            out.append((int(id), bkey, value, int(version), updated_at))
        return out


class ChunkFailed(Exception):
    """A chunk failed every attempt; the pass gives up on it."""

    def __init__(self, i: int, error: BaseException):
        super().__init__(f"chunk {i}: {describe_error(error)}")
        self.i, self.error = i, error


class ChunkCopy:
    """A Syncer: start() copies A into B chunk by chunk, step() copies it again (idempotent) or
    copies the rows past its mark (plain INSERT).

    `load_data` (idempotent only) writes each chunk by LOAD DATA LOCAL INFILE … REPLACE instead of
    upserts; `parallel` (idempotent only) writes that many chunks at once. `faults` plans faults on
    the target during the first pass: {chunk index: (fault, n)} injects `fault` (kill-connections,
    lose-reply …) after the chunk's writes and before its COMMIT, on each of its first n attempts.
    `row_events` off records no `row` event per row copied (a large copy)."""

    actor = "copier"

    def __init__(
        self,
        ctx: Any,
        pair: Pair,
        *,
        chunk: int,
        idempotent: bool = True,
        load_data: bool = False,
        parallel: int = 1,
        retries: Retries = Retries(),
        faults: dict[int, tuple[str, int]] | None = None,
        row_events: bool = True,
        timeout: float = 5.0,
    ):
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        if not idempotent and (load_data or parallel > 1):
            # The plain INSERT copy's mark moves chunk after chunk; and it is the lesson as it is.
            raise ValueError("load_data and parallel chunks need the idempotent copy")
        self.ctx, self.pair = ctx, pair
        self.chunk, self.idempotent = chunk, idempotent
        self.load_data, self.parallel = load_data, parallel
        self.retries, self.faults, self.row_events = retries, dict(faults or {}), row_events
        self.timeout = timeout
        self.wait = SeededJitter(ctx.rng, retries.first_s, retries.max_s)
        self.source = pair.source()
        if load_data:
            with self.source.cursor() as cur:
                statement = "SET SESSION group_concat_max_len = %s"
                execute(ctx, cur, pair.source_node, statement, (GROUP_CONCAT_MAX_LEN,), actor=self.actor)
        self._idle: list = []  # target connections no attempt is using
        self._generation = 0  # one more after each failed attempt: older connections are not reused
        self._lock = threading.Lock()
        self.mark = 0  # plain INSERT: the last id of the last chunk whose COMMIT was acknowledged
        self.passes = 0
        self.failed_passes = 0
        self.chunks = 0
        self.rows_written = 0
        self.rows_deleted = 0
        self.retried: list[dict] = []  # every failed attempt that was retried, with its wait

    # The Syncer ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.copy_pass(stepping=True)

    def step(self) -> None:
        self.copy_pass()

    def result(self) -> dict:
        return {
            "mode": ("load-data" if self.load_data else "upsert") if self.idempotent else "insert",
            "parallel": self.parallel,
            "passes": self.passes,
            "failed_passes": self.failed_passes,
            "chunks": self.chunks,
            "rows_written": self.rows_written,
            "rows_deleted": self.rows_deleted,
            "retries": self.retried,
            **({} if self.idempotent else {"mark": self.mark}),
        }

    # One pass -----------------------------------------------------------------------------------
    def copy_pass(self, stepping: bool = False) -> bool:
        """Copies A into B chunk by chunk; False when a chunk failed every attempt (the pass is given
        up, the next one tries again). `stepping` puts a step boundary between chunks. Each chunk
        is read in a snapshot of its own, so a pass is no point-in-time copy of A while A changes:
        the passes after it carry over what moved meanwhile. With `parallel` above 1 the chunks are
        read here one after another and written by that many threads."""
        self.passes += 1
        after = self.mark if not self.idempotent else 0
        i = 0
        pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="copier") if self.parallel > 1 else None
        writing: deque[Future] = deque()
        try:
            while True:
                chunk = self._read_chunk(after)
                last = chunk.count < self.chunk
                # A full chunk covers the ids (after, its last id]; the last one every id above `after`.
                hi = None if last else chunk.last_id
                if chunk.count or self.idempotent:  # an empty last chunk may still have ids to delete
                    if pool is None:
                        self._write_with_retries(i, after, hi, chunk)
                    else:
                        writing.append(pool.submit(self._write_with_retries, i, after, hi, chunk))
                        # `parallel` chunks in writing and one read ahead; a failed one stops the pass.
                        while writing and (len(writing) > self.parallel or writing[0].done()):
                            writing.popleft().result()
                if last:
                    break
                after, i = chunk.last_id, i + 1
                if stepping:
                    self.ctx.step()
            while writing:
                writing.popleft().result()
        except ChunkFailed as failed:
            self.failed_passes += 1
            self.ctx.emit(
                "log",
                actor=self.actor,
                label=f"pass {self.passes} gave up at chunk {failed.i} after {self.retries.attempts} attempts: "
                f"{describe_error(failed.error)}; the next pass tries again",
            )
            return False
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return True

    def _read_chunk(self, after: int) -> Chunk:
        node, span = self.pair.source_node, f"WHERE id > {after} ORDER BY id LIMIT {self.chunk}"
        with self.source.cursor() as cur:
            if not self.load_data:
                label = f"SELECT … FROM a {span}"
                execute(self.ctx, cur, node, READ_CHUNK, (after, self.chunk), actor=self.actor, label=label)
                rows = list(cur.fetchall())
                return Chunk(len(rows), rows[-1][0] if rows else None, rows=rows)
            label = f"SELECT GROUP_CONCAT(rows) FROM a {span}"
            execute(self.ctx, cur, node, READ_LINES, (after, self.chunk), actor=self.actor, label=label)
            count, last_id, joined = cur.fetchone()
        count = int(count)
        if not count:
            return Chunk(0, None, lines=b"")
        # A value past the server's max_allowed_packet comes back NULL: B must not get part of a chunk.
        if joined is None or joined.count(LINE) != count:
            raise ValueError(f"a chunk of {count} rows does not fit in one value from the source; use smaller chunks")
        return Chunk(count, int(last_id), lines=load_data_lines(joined))

    def _write_with_retries(self, i: int, after: int, hi: int | None, chunk: Chunk) -> None:
        what = f"chunk {i}"
        retrying = Retrying(
            stop=stop_after_attempt(self.retries.attempts),
            wait=self.wait,
            retry=retry_if_exception_type(RETRYABLE),
            before_sleep=lambda state: self._record_retry(what, state),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._write_chunk(i, after, hi, chunk, attempt.retry_state.attempt_number)
        except RETRYABLE as exc:
            raise ChunkFailed(i, exc) from exc

    def _record_retry(self, what: str, state: RetryCallState) -> None:
        attempt, wait_s = state.attempt_number, state.next_action.sleep
        error = describe_error(state.outcome.exception())
        cap_ms = round(self.wait.cap(attempt) * 1000.0, 1)
        self.retried.append({"what": what, "attempt": attempt, "wait_ms": round(wait_s * 1000.0, 1), "cap_ms": cap_ms})
        events.retry(self.ctx, self.actor, what, attempt, wait_s * 1000.0, error, cap_ms=cap_ms)

    def _sleep(self, seconds: float) -> None:
        # A stopped run does not sit out its backoff: it stops at its next step boundary.
        self.ctx.cancelled.wait(seconds)

    def _take_target(self) -> tuple[Any, int]:
        """An idle target connection, or a new one (autocommit off: a chunk is one transaction),
        with the generation it was taken in."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), self._generation
            generation = self._generation
        return self._connect(), generation

    def _connect(self) -> Any:
        return self.ctx.cmd(
            self.pair.target_node,
            "connect",
            lambda: self.pair.target(
                autocommit=False,
                connect_timeout=self.timeout,
                read_timeout=self.timeout,
                write_timeout=self.timeout,
                # Only the load-data writer lets the server ask this client for a file.
                local_infile=self.load_data,
            ),
            actor=self.actor,
            summary=lambda conn: f"connection {conn.thread_id()}",
        )

    def _write_chunk(self, i: int, after: int, hi: int | None, chunk: Chunk, attempt: int) -> None:
        """One attempt: the chunk's writes and COMMIT, one transaction on the target. On any error
        the connection is dropped (it may be dead, or hold a transaction the server rolled back)."""
        node = self.pair.target_node
        span = f"ids {after + 1}–{hi}" if hi is not None else f"ids > {after}"
        conn, generation = self._take_target()
        try:
            present: dict[int, int] = {}  # {id: version} of B's rows in the chunk's range
            extra: list[int] = []
            # One transaction per chunk: B gets the whole chunk or none of it, so a retried chunk
            # never finds half of itself (autocommit is off on this connection).
            with conn.cursor() as cur:
                if self.idempotent:
                    present = self._ids_in_b(cur, after, hi)
                    extra = sorted(set(present) - chunk.ids()) if present else []
                if chunk.count and self.load_data:
                    self._stream(cur, chunk, span)
                elif chunk.count:
                    statement = UPSERT if self.idempotent else INSERT
                    verb = "INSERT … ON DUPLICATE KEY UPDATE" if self.idempotent else "INSERT"
                    label = f"{verb} {chunk.count} rows INTO b ({span})"
                    execute(self.ctx, cur, node, statement, chunk.rows, actor=self.actor, label=label, many=True)
                if extra:
                    marks = ", ".join(["%s"] * len(extra))
                    label = f"DELETE FROM b {len(extra)} ids A no longer has ({span})"
                    execute(
                        self.ctx,
                        cur,
                        node,
                        f"DELETE FROM {B} WHERE id IN ({marks})",
                        extra,
                        actor=self.actor,
                        label=label,
                    )
            self._planned_fault(i, attempt)
            self.ctx.cmd(node, f"COMMIT chunk {i}", conn.commit, actor=self.actor)
        except BaseException:
            self._drop(conn)
            # What failed this attempt (kill-connections, a restart, a partition) most likely hit
            # every connection to the target: the idle ones, and those taken before now that come
            # back later, are dropped too, so that no retry is spent on a dead connection.
            with self._lock:
                self._generation += 1
                stale, self._idle = self._idle, []
            for other in stale:
                self._drop(other)
            raise
        with self._lock:
            reuse = generation == self._generation
            if reuse:
                self._idle.append(conn)
            self.chunks += 1
            self.rows_written += chunk.count
            self.rows_deleted += len(extra)
            if chunk.count and not self.idempotent:
                self.mark = chunk.last_id
        if not reuse:
            self._drop(conn)
        if self.row_events:
            self._record_rows(chunk.tuples(), present, extra)

    def _stream(self, cur: Any, chunk: Chunk, span: str) -> None:
        """The chunk's lines into B by one LOAD DATA LOCAL INFILE … REPLACE. pymysql sends the file
        the statement names; the lines are in memory already, and a temporary file is the simplest
        thing it can open (a pipe would need a thread to feed it, and to unblock when the
        statement fails before it read everything)."""
        with tempfile.NamedTemporaryFile(prefix="chunk-", suffix=".tsv") as f:
            f.write(chunk.lines)
            f.flush()
            label = f"LOAD DATA LOCAL INFILE … REPLACE {chunk.count} rows INTO b ({span})"
            execute(self.ctx, cur, self.pair.target_node, LOAD_DATA, (f.name,), actor=self.actor, label=label)

    def _record_rows(self, rows: list[tuple], present: dict[int, int], extra: list[int]) -> None:
        """A `row` event per row the chunk wrote: every row on the first pass (the copy people
        watch), afterwards only those that changed B (new, of another version, or deleted), so a
        pass that rewrites a whole table does not flood the page with rows that stayed the same."""
        for id, bkey, value, version, _ in rows:
            if id not in present:
                op = "insert"
            elif self.passes == 1 or present[id] != version:
                op = "upsert"
            else:
                continue
            events.row(self.ctx, "B", op, id, bkey=bkey, version=version, value=value, by=self.actor)
        for id in extra:
            events.row(self.ctx, "B", "delete", id, by=self.actor)

    def _ids_in_b(self, cur: Any, after: int, hi: int | None) -> dict[int, int]:
        where, args = ("id > %s AND id <= %s", (after, hi)) if hi is not None else ("id > %s", (after,))
        statement = f"SELECT id, version FROM {B} WHERE {where}"
        span = f"{after + 1}–{hi}" if hi is not None else f"> {after}"
        execute(
            self.ctx, cur, self.pair.target_node, statement, args, actor=self.actor, label=f"SELECT ids {span} FROM b"
        )
        return {int(id): int(version) for id, version in cur.fetchall()}

    def _planned_fault(self, i: int, attempt: int) -> None:
        planned = self.faults.get(i) if self.passes == 1 else None
        if planned is None or attempt > planned[1]:
            return
        try:
            self.ctx.fault(planned[0], self.pair.target_node)
        except NodeDown as exc:  # someone took the target down first: that fault will do
            self.ctx.emit("log", actor=self.actor, label=f"planned {planned[0]} not injected: {exc}")

    def _drop(self, conn: Any) -> None:
        try:
            conn.rollback()
        except Exception:  # noqa: BLE001 - the connection is most likely gone with the error
            pass
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection may raise; it is gone either way
            pass

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)
        self.source.close()
