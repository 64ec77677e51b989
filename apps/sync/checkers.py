"""Invariants of the sync lab. A checker takes nothing from the syncer's account: it reads A and B
again, from both servers, over connections of its own, and holds B to the writes A acknowledged
(the workload's history: what a client of A was told). Evidence opens with a one-line `summary`,
then names the keys and both sides' values. How long B took to catch up is a measurement (the
`convergence_lag_ms` metric), never a condition of the verdict."""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

from apps.runs.registry import Check, counted

from .engine.tables import COLUMNS, ROW_CRC, Pair, as_row, table

NOT_REACHED = "the run ended before its tables were made"
CHUNK = 1000  # ids per checksum chunk
SHOWN = 20  # keys of each kind of difference listed in the evidence
EXAMPLES = 3  # keys named in a summary

# One statement per side fingerprints every chunk of ids, however sparse the ids are (a stray row
# at id 10^9 is one more group, not a million empty ranges). The chunking is the checker's own,
# not the repairer's, so a flaw in the syncer's chunks cannot hide from it.
FINGERPRINTS = f"SELECT id DIV %s, COUNT(*), BIT_XOR({ROW_CRC}) FROM {{table}} GROUP BY 1"
ROWS_IN = f"SELECT {', '.join(COLUMNS)} FROM {{table}} WHERE id >= %s AND id < %s ORDER BY id"


@contextmanager
def _connections(ctx):
    """A new connection to each side's server, closed when the check is done."""
    pair = Pair(ctx.nodes)
    conns = {}
    try:
        for side in ("A", "B"):
            conns[side] = pair.connect(side)
        yield conns
    finally:
        for conn in conns.values():
            conn.close()


def _read(conn, statement: str, args=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(statement, args)
        return list(cur.fetchall())


def _reached(result) -> bool:
    return bool(result) and result.get("tables", True)


def _ids(ids, n: int = EXAMPLES) -> str:
    """'id 1, 2, 4' (and how many more)."""
    ids = list(ids)
    more = f" and {len(ids) - n} more" if len(ids) > n else ""
    return "id " + ", ".join(str(i) for i in ids[:n]) + more


def _rows_by_id(conn, side: str, lo: int, hi: int) -> dict[int, list[tuple]]:
    """{id: [rows]} of a side in [lo, hi) (B may hold several rows for one id)."""
    rows: dict[int, list[tuple]] = defaultdict(list)
    for row in _read(conn, ROWS_IN.format(table=table(side)), (lo, hi)):
        rows[int(row[0])].append(tuple(row))
    return rows


def b_equals_a(ctx, result):
    """Per-chunk COUNT and BIT_XOR(CRC32) on both sides; the chunks that differ compared row by row."""
    if not _reached(result):
        return Check(None, NOT_REACHED)
    with _connections(ctx) as conns:
        sums = {
            side: {
                int(k): (int(n), int(crc))
                for k, n, crc in _read(conn, FINGERPRINTS.format(table=table(side)), (CHUNK,))
            }
            for side, conn in conns.items()
        }
        chunks = sorted(set(sums["A"]) | set(sums["B"]))
        differing = [(k * CHUNK, (k + 1) * CHUNK) for k in chunks if sums["A"].get(k) != sums["B"].get(k)]
        missing, extra, changed = [], [], []
        for lo, hi in differing:
            rows_a, rows_b = _rows_by_id(conns["A"], "A", lo, hi), _rows_by_id(conns["B"], "B", lo, hi)
            for id in sorted(set(rows_a) | set(rows_b)):
                ra, rb = rows_a.get(id, []), rows_b.get(id, [])
                if ra and not rb:
                    missing.append({"id": id, "A": as_row(ra[0])})
                elif rb and not ra:
                    extra.append({"id": id, "B": [as_row(r) for r in rb]})
                elif ra != rb:
                    changed.append({"id": id, "A": as_row(ra[0]), "B": [as_row(r) for r in rb]})
    counts = {side: sum(n for n, _ in sums[side].values()) for side in ("A", "B")}
    problems = []
    if missing:
        problems.append(f"B is missing {counted(len(missing), 'row')}, e.g. {_ids(d['id'] for d in missing)}")
    if extra:
        problems.append(f"B has {counted(len(extra), 'id')} A does not, e.g. {_ids(d['id'] for d in extra)}")
    if changed:
        problems.append(
            f"{counted(len(changed), 'row')} {'differs' if len(changed) == 1 else 'differ'}, e.g. {_ids(d['id'] for d in changed)}"
        )
    if problems:
        summary = "; ".join(problems) + f" ({counted(len(differing), 'chunk')} of {len(chunks)} differed)"
    else:
        summary = f"B equals A: {counted(counts['A'], 'row')}, every chunk of {CHUNK} ids alike ({len(chunks)})"
    evidence = {
        "summary": summary,
        "rows": counts,
        "chunks": len(chunks),
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
    with _connections(ctx) as conns:
        duplicated = [{"bkey": k, "rows": int(n)} for k, n in _read(conns["B"], statement)]
        ((rows,),) = _read(conns["B"], f"SELECT COUNT(*) FROM {table('B')}")
    if duplicated:
        shown = ", ".join(f"{d['bkey']} ({d['rows']} rows)" for d in duplicated[:EXAMPLES])
        appear = "appears" if len(duplicated) == 1 else "appear"
        summary = f"{counted(len(duplicated), 'business key')} {appear} more than once in B, e.g. {shown}"
    else:
        summary = f"every business key appears once among B's {counted(int(rows), 'row')}"
    return Check(not duplicated, {"summary": summary, "duplicated": len(duplicated), "keys": duplicated[:SHOWN]})


def _acknowledged(ctx) -> dict[int, dict]:
    """{id: the last write to it that A acknowledged} from the workload's history, in order."""
    last: dict[int, dict] = {}

    def note(id, write, time):
        last[int(id)] = {**write, "time_s": round(time / 1000.0, 3)}

    for op in ctx.history.completed():
        if not isinstance(op.get("value"), dict):
            continue
        value, f = op["value"], op["f"]
        if op["type"] == "info" and f == "delete" and int(value.get("id", -1)) in last:
            # The delete's outcome is unknown (its reply was lost): the row may be gone from A,
            # so B may rightly lack it. A lost update or insert needs no such allowance: B is held
            # only to the versions A acknowledged.
            last[int(value["id"])]["maybe_deleted"] = True
        if op["type"] != "ok":
            continue
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
    there, and a key whose last acknowledged write deleted it is not. A key whose delete had an
    unknown outcome may be either."""
    if not _reached(result):
        return Check(None, NOT_REACHED)
    acked = _acknowledged(ctx)
    versions_b = defaultdict(list)
    with _connections(ctx) as conns:
        for id, version in _read(conns["B"], f"SELECT id, version FROM {table('B')}"):
            versions_b[int(id)].append(int(version))
    lost, kept = [], []
    for id, write in sorted(acked.items()):
        in_b = versions_b.get(id)
        if write["op"] == "delete":
            if in_b:
                kept.append({"id": id, "deleted_at_s": write["time_s"], "B_versions": in_b})
        elif not in_b and write.get("maybe_deleted"):
            continue
        elif not in_b or max(in_b) < write["version"]:
            lost.append({"id": id, "write": write, "B_versions": in_b or "absent"})
    problems = []
    if lost:
        shown = ", ".join(f"{w['id']} v{w['write']['version']}" for w in lost[:EXAMPLES])
        more = f" and {len(lost) - EXAMPLES} more" if len(lost) > EXAMPLES else ""
        late = sum(1 for w in lost if w["write"].get("late"))
        of_late = f", {late} of them the late transaction's" if late else ""
        problems.append(f"{counted(len(lost), 'acknowledged write')} not in B{of_late}, e.g. id {shown}{more}")
    if kept:
        problems.append(f"B still has {counted(len(kept), 'row')} A deleted, e.g. {_ids(k['id'] for k in kept)}")
    summary = "; ".join(problems) or f"the last acknowledged write of each of {counted(len(acked), 'key')} is in B"
    evidence = {
        "summary": summary,
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
    with _connections(ctx) as conns:
        versions_a = {int(i): int(v) for i, v in _read(conns["A"], f"SELECT id, version FROM {table('A')}")}
        versions_b = _read(conns["B"], f"SELECT id, version FROM {table('B')} ORDER BY id")
    out_of_order = []
    for id, version in versions_b:
        id, version = int(id), int(version)
        if id in versions_a and versions_a[id] != version:
            out_of_order.append({"id": id, "A_version": versions_a[id], "B_version": version})
    older = sum(1 for o in out_of_order if o["B_version"] < o["A_version"])
    if out_of_order:
        shown = ", ".join(f"id {o['id']} (A v{o['A_version']}, B v{o['B_version']})" for o in out_of_order[:EXAMPLES])
        summary = (
            f"{counted(len(out_of_order), 'key')} with another version in B than in A ({older} older), e.g. {shown}"
        )
    else:
        summary = f"B holds A's version of each of the {counted(len(versions_a), 'key')} they share"
    evidence = {
        "summary": summary,
        "keys_compared": len(versions_a),
        "different_versions": len(out_of_order),
        "B_older": older,
        "keys": out_of_order[:SHOWN],
    }
    return Check(not out_of_order, evidence)
