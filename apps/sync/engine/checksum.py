"""Verification and repair in the manner of pt-table-checksum and pt-table-sync. Plain Python.

Both tables are cut into chunks by primary-key range; each chunk is fingerprinted on each side by
`COUNT(*)` and `BIT_XOR(CRC32(CONCAT_WS(...)))`, so equal chunks cost one small answer per side and
never travel. Only the chunks whose fingerprints differ are read row by row, and B is repaired
from A: the rows A has are upserted, the ones it does not have are deleted.

`differing_chunks(conn_a, conn_b, size)` is the verification alone, unrecorded (the benchmark
times it against `CHECKSUM TABLE`); `ChecksumRepair` is the syncer a scenario runs, every
statement recorded and every chunk drawn.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from . import events
from .tables import CHUNK_CHECKSUM, COLUMNS, UPSERT_B, checksum, execute, id_range, table

A, B = table("A"), table("B")
SELECT_CHUNK = f"SELECT {', '.join(COLUMNS)} FROM {{table}} WHERE id >= %s AND id < %s ORDER BY id"
COPY_BATCH = 1000
SHOWN_ROWS = 20  # differing rows a chunk's event lists
VERIFY_CHUNK = 20_000  # ids per chunk when nothing is drawn: few round trips, each a long range scan


@dataclass(frozen=True)
class Chunk:
    """A range of ids [lo, hi) and its (rows, BIT_XOR of CRC32) on each side."""

    i: int
    lo: int
    hi: int
    a: tuple[int, int]
    b: tuple[int, int]

    @property
    def equal(self) -> bool:
        return self.a == self.b


def chunk_bounds(range_a: tuple[int, int], range_b: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """The id ranges [lo, hi) that cover both sides: fixed-width chunks over A's ids, and, as
    pt-table-checksum does, one chunk each for B's ids below and above them (so a stray row far
    outside A's range costs one chunk, not millions of empty ones)."""
    if size < 1:
        raise ValueError("the chunk size must be at least 1")
    (lo_a, hi_a), (lo_b, hi_b) = range_a, range_b
    if lo_a == hi_a:  # A is empty: whatever B holds is one chunk
        return [(lo_b, hi_b)] if lo_b < hi_b else []
    bounds = [(start, min(start + size, hi_a)) for start in range(lo_a, hi_a, size)]
    if lo_b < hi_b and lo_b < lo_a:
        bounds.insert(0, (lo_b, lo_a))
    if lo_b < hi_b and hi_b > hi_a:
        bounds.append((hi_a, hi_b))
    return bounds


def fingerprints(conn: Any, side: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(rows, BIT_XOR of CRC32) of each range of a side, one indexed range scan each."""
    return [checksum(conn, side, lo, hi) for lo, hi in bounds]


def differing_chunks(conn_a: Any, conn_b: Any, size: int) -> list[Chunk]:
    """The chunks of `size` ids whose fingerprints differ between A (on conn_a) and B (on conn_b)."""
    return [c for c in compare_chunks(conn_a, conn_b, size) if not c.equal]


def compare_chunks(conn_a: Any, conn_b: Any, size: int) -> list[Chunk]:
    """Every chunk of `size` ids, fingerprinted on A (on conn_a) and B (on conn_b). Nothing is
    recorded. The two sides are fingerprinted at once, one thread per connection (each
    on its own server when A and B are on two), so the time is that of the slower side. Each chunk
    costs a round trip besides its range scan: chunks of 10,000 ids or more keep those small."""
    bounds = chunk_bounds(id_range(conn_a, "A"), id_range(conn_b, "B"), size)
    sums: dict[str, list[tuple[int, int]]] = {}
    errors: list[BaseException] = []

    def fingerprint(side: str, conn: Any) -> None:
        try:
            sums[side] = fingerprints(conn, side, bounds)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=fingerprint, args=side) for side in (("A", conn_a), ("B", conn_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    sides = zip(bounds, sums["A"], sums["B"], strict=True)
    return [Chunk(i, lo, hi, a, b) for i, ((lo, hi), a, b) in enumerate(sides)]


def bench_verify(ctx: Any, pair: Any, size: int = VERIFY_CHUNK) -> dict:
    """The verification the benchmark times against CHECKSUM TABLE, over new connections to both
    servers. Nothing is recorded (`ctx` is the benchmark's run context, unused)."""
    conn_a, conn_b = pair.source(), pair.target()
    try:
        chunks = compare_chunks(conn_a, conn_b, size)
    finally:
        conn_a.close()
        conn_b.close()
    return {"chunks": len(chunks), "differing": [[c.lo, c.hi] for c in chunks if not c.equal]}


def row_differences(rows_a: list[tuple], rows_b: list[tuple]) -> tuple[list[tuple], list[int]]:
    """What makes B's rows A's: (A's rows that B lacks or holds otherwise, ids B has and A not)."""
    by_id_a = {row[0]: tuple(row) for row in rows_a}
    by_id_b = {row[0]: tuple(row) for row in rows_b}
    upserts = [row for id, row in by_id_a.items() if by_id_b.get(id) != row]
    deletes = sorted(id for id in by_id_b if id not in by_id_a)
    return upserts, deletes


class ChecksumRepair:
    """A first copy of A into B (keyed by A's id), then on every pass: fingerprint every chunk on
    both sides, read row by row only the chunks that differ, and repair those in B. The workload
    waits while a pass runs, so both sides of a chunk are fingerprinted at the same point of A's
    history (pt-table-checksum gets that from replication)."""

    actor = "checksum"

    def __init__(self, ctx: Any, pair: Any, workload: Any = None, *, chunk: int = 10):
        self.ctx, self.pair, self.size = ctx, pair, chunk
        self.source, self.target = pair.source(), pair.target()
        self.passes = 0
        self.chunks_checked = 0
        self.chunks_compared = 0
        self.rows_compared = 0
        self.upserted = 0
        self.deleted = 0
        self.copied = 0

    def _read(self, side: str, statement: str, args: Any = (), *, label: str) -> list[tuple]:
        conn = self.source if side == "A" else self.target
        with conn.cursor() as cur:
            execute(self.ctx, cur, self.pair.node_of(side), statement, args, actor=self.actor, label=label)
            return list(cur.fetchall())

    def start(self) -> None:
        """B starts as a copy of A, taken in batches of ids."""
        rows = self._read("A", f"SELECT {', '.join(COLUMNS)} FROM {A} ORDER BY id", label="SELECT * FROM a")
        with self.target.cursor() as cur:
            for start in range(0, len(rows), COPY_BATCH):
                batch = rows[start : start + COPY_BATCH]
                label = f"INSERT {len(batch)} rows INTO b (upsert)"
                execute(self.ctx, cur, self.pair.target_node, UPSERT_B, batch, actor=self.actor, label=label, many=True)
        self.copied = len(rows)
        ids = [rows[0][0], rows[-1][0]] if rows else []
        data = {"type": "load", "table": "B", "rows": len(rows), "ids": ids}
        self.ctx.emit("state", actor="B", label=f"B starts as a copy of A ({len(rows)} rows)", data=data)

    def _fingerprint(self, side: str, lo: int, hi: int) -> tuple[int, int]:
        statement = CHUNK_CHECKSUM.format(table=table(side))
        label = f"SELECT COUNT(*), BIT_XOR(CRC32(...)) FROM {table(side)} WHERE id >= {lo} AND id < {hi}"
        ((count, crc),) = self._read(side, statement, (lo, hi), label=label)
        return int(count), int(crc)

    def step(self) -> None:
        self.passes += 1
        ranges = []
        for side in ("A", "B"):
            statement = f"SELECT MIN(id), MAX(id) FROM {table(side)}"
            ((lo, hi),) = self._read(side, statement, label=statement)
            ranges.append((0, 0) if lo is None else (int(lo), int(hi) + 1))
        bounds = chunk_bounds(ranges[0], ranges[1], self.size)
        differing = []
        for i, (lo, hi) in enumerate(bounds):
            events.chunk(self.ctx, i, lo, hi, "checking", actor=self.actor)
            chunk = Chunk(i, lo, hi, self._fingerprint("A", lo, hi), self._fingerprint("B", lo, hi))
            self.chunks_checked += 1
            state = "equal" if chunk.equal else "differ"
            events.chunk(self.ctx, i, lo, hi, state, a=list(chunk.a), b=list(chunk.b), actor=self.actor)
            if not chunk.equal:
                differing.append(chunk)
        repaired = sum(self._repair(chunk) for chunk in differing)
        data = {"pass": self.passes, "chunks": len(bounds), "differing": len(differing), "repaired": repaired}
        label = f"pass {self.passes}: {len(differing)} of {len(bounds)} chunks differed, {repaired} rows repaired"
        self.ctx.emit("log", actor=self.actor, label=label, data=data)

    def _repair(self, chunk: Chunk) -> int:
        """Compares the chunk row by row and makes B's rows in it A's. Returns how many rows it
        changed."""
        lo, hi = chunk.lo, chunk.hi
        rows_a = self._read(
            "A", SELECT_CHUNK.format(table=A), (lo, hi), label=f"SELECT * FROM a WHERE id >= {lo} AND id < {hi}"
        )
        rows_b = self._read(
            "B", SELECT_CHUNK.format(table=B), (lo, hi), label=f"SELECT * FROM b WHERE id >= {lo} AND id < {hi}"
        )
        self.chunks_compared += 1
        self.rows_compared += len(rows_a) + len(rows_b)
        upserts, deletes = row_differences(rows_a, rows_b)
        node = self.pair.target_node
        with self.target.cursor() as cur:
            # One transaction per chunk: a chunk is never left half repaired.
            self.ctx.cmd(node, "BEGIN", lambda: cur.execute("BEGIN"), actor=self.actor)
            if upserts:
                label = f"UPSERT {len(upserts)} rows INTO b (ids {', '.join(str(r[0]) for r in upserts[:10])})"
                execute(self.ctx, cur, node, UPSERT_B, upserts, actor=self.actor, label=label, many=True)
            if deletes:
                marks = ", ".join(["%s"] * len(deletes))
                label = f"DELETE FROM b WHERE id IN ({', '.join(map(str, deletes[:10]))})"
                execute(
                    self.ctx,
                    cur,
                    node,
                    f"DELETE FROM {B} WHERE id IN ({marks})",
                    deletes,
                    actor=self.actor,
                    label=label,
                )
        self.ctx.cmd(node, "COMMIT", self.target.commit, actor=self.actor)
        for row in upserts:
            events.row(self.ctx, "B", "repair", row[0], bkey=row[1], version=row[3], value=row[2], by=self.actor)
        for id in deletes:
            events.row(self.ctx, "B", "delete", id, by=self.actor)
        self.upserted += len(upserts)
        self.deleted += len(deletes)
        shown = self._shown(rows_a, rows_b, [r[0] for r in upserts] + deletes)
        events.chunk(
            self.ctx, chunk.i, lo, hi, "repaired", a=list(chunk.a), b=list(chunk.b), rows=shown, actor=self.actor
        )
        return len(upserts) + len(deletes)

    @staticmethod
    def _shown(rows_a: list[tuple], rows_b: list[tuple], ids: list[int]) -> list[dict]:
        """The rows the chunk's comparison found different, as the grid lists them: each side's
        version and value, or None where the side lacks the row."""
        side = {
            "A": {r[0]: {"version": r[3], "value": r[2]} for r in rows_a},
            "B": {r[0]: {"version": r[3], "value": r[2]} for r in rows_b},
        }
        return [{"id": id, "A": side["A"].get(id), "B": side["B"].get(id)} for id in sorted(ids)[:SHOWN_ROWS]]

    def result(self) -> dict:
        return {
            "copied": self.copied,
            "passes": self.passes,
            "chunks_checked": self.chunks_checked,
            "chunks_compared": self.chunks_compared,
            "rows_compared": self.rows_compared,
            "rows_upserted": self.upserted,
            "rows_deleted": self.deleted,
        }


class Drift:
    """B changed behind the syncer's back, as a hand-run fix, a stray job or a bad restore does:
    a few rows changed, one deleted, one added that A never had."""

    actor = "drift"

    def __init__(self, ctx: Any, pair: Any, rng: random.Random, *, changed: int = 2):
        self.ctx, self.pair, self.rng, self.changed = ctx, pair, rng, changed
        self.log: list[dict] = []

    def apply(self) -> dict:
        conn = self.pair.target()
        node = self.pair.target_node
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM {B} ORDER BY id")
                ids = [int(i) for (i,) in cur.fetchall()]
                picked = self.rng.sample(ids, min(len(ids), self.changed + 1))
                changed, deleted = picked[: self.changed], picked[self.changed :]
                for id in changed:
                    value = "drift" + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7))
                    statement = f"UPDATE {B} SET value = %s WHERE id = %s"
                    execute(self.ctx, cur, node, statement, (value, id), actor=self.actor, label=f"UPDATE b id={id}")
                    events.row(self.ctx, "B", "update", id, value=value, by=self.actor)
                for id in deleted:
                    statement = f"DELETE FROM {B} WHERE id = %s"
                    execute(self.ctx, cur, node, statement, (id,), actor=self.actor, label=f"DELETE FROM b id={id}")
                    events.row(self.ctx, "B", "delete", id, by=self.actor)
                # An id past A's newest: a row A never had (A's next insert may take its id, and
                # then its row in B is simply wrong until repaired).
                added = (max(ids) if ids else 0) + self.rng.randint(1, 3)
                bkey = f"drift{added}"
                statement = f"INSERT INTO {B} ({', '.join(COLUMNS)}) VALUES (%s, %s, %s, 1, NOW(6))"
                args = (added, bkey, "stray")
                execute(self.ctx, cur, node, statement, args, actor=self.actor, label=f"INSERT INTO b id={added}")
                events.row(self.ctx, "B", "insert", added, bkey=bkey, version=1, value="stray", by=self.actor)
        finally:
            conn.close()
        done = {"changed": changed, "deleted": deleted, "added": [added]}
        self.log.append(done)
        return done

    def on_fault(self, target: str, **options: Any) -> dict:
        """The fault button: B drifts now; the syncer's next pass should find and repair it."""
        if target != "B":
            raise ValueError(f"only B drifts (not {target})")
        return self.apply()


class DriftThenRepair:
    """The repairer, with B drifting just before its pass at the planned passes."""

    def __init__(self, repairer: ChecksumRepair, drift: Drift, at: set[int]):
        self.repairer, self.drift, self.at = repairer, drift, at
        self.actor = repairer.actor
        self.passes = 0

    def start(self) -> None:
        self.repairer.start()

    def step(self) -> None:
        self.passes += 1
        if self.passes in self.at:
            self.drift.apply()
        self.repairer.step()

    def result(self) -> dict:
        return {**self.repairer.result(), "drifts": self.drift.log}
