"""The sync lab's event vocabulary: what its run-page panels draw. Every event is a `state` (or a
`metric`) whose data has a `type`:

- `row`     a row changed in A or B: {table: "A"|"B", op, id, bkey, version, value, by}
            (op: insert, update, delete in A; insert, upsert, update, delete, repair in B)
- `tape`    a binlog event the reader took: {file, pos, next_pos, event, ids, gtid}
- `offsets` the CDC positions: {reader: {file, pos}, committed: {file, pos}} (either may be absent)
- `retry`   a failed attempt and the wait before the next: {what, attempt, wait_ms, error}, and for
            a backoff with jitter cap_ms, the top of the window the wait was drawn from
- `chunk`   a checksum chunk: {i, lo, hi, state: "checking"|"equal"|"differ"|"repaired",
            a: [count, crc], b: [count, crc], rows: differing rows}
- metric `lag_ms`  how far B trails A: {name: "lag_ms", value, x: run time in s}
- `watermark` a poller's watermark after a poll: {value: the newest updated_at read, since, rows}
- `applier` the CDC applier's process: {state: "started"|"killed"|"exited", pid, life, ...}
- `replay`  a source transaction B got again after a restart: {start: {file, pos}, changes, times}
- `snapshot` a consistent snapshot of A loaded into B: {why, position: {file, pos}, rows}
- `schema`  a column added to A (by the ALTER) or to B (by the syncer): {table, column, sql | position}
- `reader`  the CDC reader going down or up: {state: "down"|"up", committed: {file, pos}}
- `purge`   the source purged its older binlogs: {begins: {file, pos}, files}
- `purged`  the reader's position is gone (error 1236), a new snapshot follows: {position, error}
"""

from __future__ import annotations

from typing import Any


def row(ctx: Any, table: str, op: str, id: int, *, bkey=None, version=None, value=None, by="workload", **extra) -> None:
    where = f" v{version}" if version is not None else ""
    data = {"type": "row", "table": table, "op": op, "id": id, "bkey": bkey, "version": version, "value": value}
    ctx.emit("state", actor=table, label=f"{table} {op} id={id}{where}", data={**data, "by": by, **extra})


def tape(ctx: Any, file: str, pos: int, event: str, ids=(), *, next_pos=None, gtid=None, **extra) -> None:
    data = {"type": "tape", "file": file, "pos": pos, "next_pos": next_pos, "event": event, "ids": list(ids)}
    ctx.emit("state", actor="binlog", label=f"{event} @{file}:{pos}", data={**data, "gtid": gtid, **extra})


def offsets(ctx: Any, *, reader: dict | None = None, committed: dict | None = None, actor: str = "applier") -> None:
    data: dict = {"type": "offsets"}
    parts = []
    if reader is not None:
        data["reader"] = reader
        parts.append(f"read to {reader.get('file')}:{reader.get('pos')}")
    if committed is not None:
        data["committed"] = committed
        parts.append(f"committed {committed.get('file')}:{committed.get('pos')}")
    ctx.emit("state", actor=actor, label="; ".join(parts) or "offsets", data=data)


def retry(ctx: Any, actor: str, what: str, attempt: int, wait_ms: float, error: str, **extra) -> None:
    data = {"type": "retry", "what": what, "attempt": attempt, "wait_ms": round(wait_ms, 1), "error": error, **extra}
    ctx.emit("state", actor=actor, label=f"{what}: attempt {attempt} failed, retry in {wait_ms:.0f} ms", data=data)


def chunk(ctx: Any, i: int, lo: int, hi: int, state: str, *, a=None, b=None, rows=None, actor="checksum") -> None:
    data = {"type": "chunk", "i": i, "lo": lo, "hi": hi, "state": state, "a": a, "b": b, "rows": rows}
    ctx.emit("state", actor=actor, label=f"chunk {i} [{lo}, {hi}) {state}", data=data)


def lag(ctx: Any, ms: float, *, actor: str = "applier") -> None:
    seconds = round(ctx.clock / 1000.0, 3)
    data = {"name": "lag_ms", "value": round(ms, 1), "x": seconds, "y": round(ms, 1)}
    ctx.emit("metric", actor=actor, label=f"lag {ms:.0f} ms", data=data)


def watermark(ctx: Any, value: str, *, rows: int, since: str, actor: str = "poller") -> None:
    data = {"type": "watermark", "value": value, "since": since, "rows": rows}
    ctx.emit("state", actor=actor, label=f"watermark {value} ({rows} rows read)", data=data)


def applier(ctx: Any, state: str, pid: int | None, life: int, *, actor: str = "applier", **extra) -> None:
    data = {"type": "applier", "state": state, "pid": pid, "life": life, **extra}
    why = extra.get("cause") or extra.get("error")
    label = f"applier {state} (pid {pid}, life {life})" + (f": {why}" if why else "")
    ctx.emit("state", actor=actor, label=label, data=data)
