"""Invariants of the sync lab. A checker takes nothing from the syncer's account: it reads A and B
again, from both servers, over connections of its own, and holds B to the writes A acknowledged
(the workload's history: what a client of A was told). Evidence names the keys and both sides'
values. How long B took to catch up is a measurement (the `convergence_lag_ms` metric), never a
condition of the verdict."""

from __future__ import annotations

from collections import defaultdict

from apps.runs.registry import Check

from .engine.tables import CHUNK_CHECKSUM, Pair, as_row, table

NOT_REACHED = "the run ended before its tables were made"
CHUNK = 1000  # ids per checksum chunk
SHOWN = 20  # keys of each kind of difference listed in the evidence


def _read(ctx, side: str, statement: str, args=()) -> list[tuple]:
    conn = Pair(ctx.nodes).connect(side)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _rows(ctx, side: str, lo: int | None = None, hi: int | None = None) -> dict[int, list[tuple]]:
    """{id: [rows]} of a side (B may hold several rows for one id), in [lo, hi) if given."""
    where = "" if lo is None else " WHERE id >= %s AND id < %s"
    statement = f"SELECT id, bkey, value, version, updated_at FROM {table(side)}{where} ORDER BY id"
    rows: dict[int, list[tuple]] = defaultdict(list)
    for row in _read(ctx, side, statement, () if lo is None else (lo, hi)):
        rows[int(row[0])].append(tuple(row))
    return rows


def _reached(result) -> bool:
    return bool(result) and result.get("tables", True)


def b_equals_a(ctx, result):
    """Per-chunk COUNT and BIT_XOR(CRC32) on both sides; the chunks that differ compared row by row."""
    if not _reached(result):
        return Check(None, NOT_REACHED)
    bounds = [
        _read(ctx, side, f"SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), -1) + 1 FROM {table(side)}")[0]
        for side in ("A", "B")
    ]
    lo, hi = min(int(b[0]) for b in bounds), max(int(b[1]) for b in bounds)
    chunks, differing = 0, []
    for start in range(lo, hi, CHUNK):
        chunks += 1
        a, b = (
            _read(ctx, side, CHUNK_CHECKSUM.format(table=table(side)), (start, start + CHUNK))[0] for side in ("A", "B")
        )
        if tuple(a) != tuple(b):
            differing.append((start, start + CHUNK))
    missing, extra, changed = [], [], []
    for start, end in differing:
        rows_a, rows_b = _rows(ctx, "A", start, end), _rows(ctx, "B", start, end)
        for id in sorted(set(rows_a) | set(rows_b)):
            ra, rb = rows_a.get(id, []), rows_b.get(id, [])
            if ra and not rb:
                missing.append({"id": id, "A": as_row(ra[0])})
            elif rb and not ra:
                extra.append({"id": id, "B": [as_row(r) for r in rb]})
            elif ra != rb:
                changed.append({"id": id, "A": as_row(ra[0]), "B": [as_row(r) for r in rb]})
    counts = {side: int(_read(ctx, side, f"SELECT COUNT(*) FROM {table(side)}")[0][0]) for side in ("A", "B")}
    evidence = {
        "rows": counts,
        "chunks": chunks,
        "differing_chunks": [list(c) for c in differing],
        "missing_in_B": len(missing),
        "extra_in_B": len(extra),
        "different": len(changed),
        "missing": missing[:SHOWN],
        "extra": extra[:SHOWN],
        "changed": changed[:SHOWN],
    }
    return Check(not (missing or extra or changed), evidence)


def no_duplicate_keys(ctx, result):
    """No business key appears twice in B."""
    if not _reached(result):
        return Check(None, NOT_REACHED)
    statement = f"SELECT bkey, COUNT(*) FROM {table('B')} GROUP BY bkey HAVING COUNT(*) > 1 ORDER BY bkey"
    duplicated = [{"bkey": k, "rows": int(n)} for k, n in _read(ctx, "B", statement)]
    return Check(not duplicated, {"duplicated": len(duplicated), "keys": duplicated[:SHOWN]})


def _acknowledged(ctx) -> dict[int, dict]:
    """{id: the last write to it that A acknowledged} from the workload's history, in order."""
    last: dict[int, dict] = {}

    def note(id, write, time):
        last[int(id)] = {**write, "time_s": round(time / 1000.0, 3)}

    for op in ctx.history.completed():
        if op["type"] != "ok" or not isinstance(op.get("value"), dict):
            continue
        value, f = op["value"], op["f"]
        if f == "load" and value.get("first") is not None:
            for id in range(value["first"], value["last"] + 1):
                note(id, {"op": "insert", "version": 1}, op["time"])
        elif f in ("insert", "update", "delete") and value.get("id") is not None:
            note(value["id"], {"op": f, "version": value.get("version")}, op["time"])
        elif f == "late":
            for w in value.get("writes", []):
                note(w["id"], {"op": w["op"], "version": w["version"], "late": True}, op["time"])
    return last


def acknowledged_writes(ctx, result):
    """Every write A acknowledged is in B: a key's last acknowledged version (or a later one) is
    there, and a key whose last acknowledged write deleted it is not."""
    if not _reached(result):
        return Check(None, NOT_REACHED)
    acked = _acknowledged(ctx)
    versions_b = defaultdict(list)
    for id, version in _read(ctx, "B", f"SELECT id, version FROM {table('B')}"):
        versions_b[int(id)].append(int(version))
    lost, kept = [], []
    for id, write in sorted(acked.items()):
        in_b = versions_b.get(id)
        if write["op"] == "delete":
            if in_b:
                kept.append({"id": id, "deleted_at_s": write["time_s"], "B_versions": in_b})
        elif not in_b or max(in_b) < write["version"]:
            lost.append({"id": id, "write": write, "B_versions": in_b or "absent"})
    evidence = {
        "acknowledged_keys": len(acked),
        "lost": len(lost),
        "deleted_but_in_B": len(kept),
        "lost_writes": lost[:SHOWN],
        "rows_B_still_has": kept[:SHOWN],
    }
    return Check(not (lost or kept), evidence)


def per_key_order(ctx, result):
    """For every key in both tables, B's version is A's: no older write overwrote a newer one."""
    if not _reached(result):
        return Check(None, NOT_REACHED)
    versions_a = {int(i): int(v) for i, v in _read(ctx, "A", f"SELECT id, version FROM {table('A')}")}
    out_of_order = []
    for id, version in _read(ctx, "B", f"SELECT id, version FROM {table('B')} ORDER BY id"):
        id, version = int(id), int(version)
        if id in versions_a and versions_a[id] != version:
            out_of_order.append({"id": id, "A_version": versions_a[id], "B_version": version})
    older = sum(1 for o in out_of_order if o["B_version"] < o["A_version"])
    evidence = {
        "keys_compared": len(versions_a),
        "different_versions": len(out_of_order),
        "B_older": older,
        "keys": out_of_order[:SHOWN],
    }
    return Check(not out_of_order, evidence)
