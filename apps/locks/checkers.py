"""Invariants of the locks lab, read from the storage itself over new connections: what MariaDB
holds and stamped with its own clock, not what the clients believe.

Every engine returns a result with `storage` (Storage.describe()) and `acknowledged` (the
increments the clients were told succeeded). The pure functions (`overlaps`, `token_regressions`)
take plain rows, so they can be tested on their own.
"""

from apps.runs.registry import Check

from .engine.storage import Storage

MAX_EVIDENCE = 20


def _storage(ctx, result):
    return Storage.reopen(ctx.nodes, result["storage"])


def _conflict(a, b):
    """Two sections must not overlap when they touch the same row (None: the whole resource) and
    at least one of them writes."""
    same = a.row is None or b.row is None or a.row == b.row
    return same and not (a.mode == "read" and b.mode == "read")


def _brief(s):
    return {"id": s.id, "client": s.client, "start_ms": s.start_ms, "end_ms": s.end_ms, "token": s.token, "row": s.row}


def overlaps(sections):
    """The pairs of accepted sections (accepted is not False) that overlap in time and conflict.
    A section with no end (its client never left) lasts to the end of the run."""
    live = sorted((s for s in sections if s.accepted is not False), key=lambda s: s.start_ms)
    inf = float("inf")
    pairs, active = [], []
    for s in live:
        active = [a for a in active if (a.end_ms if a.end_ms is not None else inf) > s.start_ms]
        pairs.extend((a, s) for a in active if a.client != s.client and _conflict(a, s))
        active.append(s)
    return pairs


def mutual_exclusion(ctx, result):
    """No two accepted critical sections overlap, by the storage server's clock."""
    if not result:
        return Check(None, "the run ended before any critical section")
    sections = _storage(ctx, result).sections()
    if not sections:
        return Check(None, "no critical section was recorded")
    pairs = overlaps(sections)
    evidence = {
        "sections": len(sections),
        "overlapping": len(pairs),
        "pairs": [{"first": _brief(a), "second": _brief(b)} for a, b in pairs[:MAX_EVIDENCE]],
    }
    return Check(not pairs, evidence)


def no_lost_update(ctx, result):
    """The final counter (all rows together) equals the increments the clients were told succeeded."""
    if not result:
        return Check(None, "the run ended before its increments")
    counters = _storage(ctx, result).counters()
    final = sum(value for value, _, _ in counters.values())
    acknowledged = int(result["acknowledged"])
    evidence = {
        "acknowledged": acknowledged,
        "final": final,
        "lost": acknowledged - final,
        "by_row": {row: value for row, (value, _, _) in counters.items()},
    }
    return Check(final == acknowledged, evidence)


def token_regressions(writes, sections):
    """Accepted tokens that are not above the previous accepted one on the same row: first in the
    order the storage judged the fenced writes, then in the storage-clock order of the sections."""
    broken, last = [], {}
    for w in writes:
        if not w["accepted"]:
            continue
        before = last.get(w["row"])
        if before is not None and not w["token"] > before:
            broken.append({"where": "fenced_writes", "row": w["row"], "token": w["token"], "after": before})
        last[w["row"]] = w["token"]
    last = {}
    for s in sorted(sections, key=lambda s: s.start_ms):
        if not s.accepted or not isinstance(s.token, int):
            continue
        before = last.get(s.row)
        if before is not None and not s.token > before:
            broken.append({"where": "sections", "row": s.row, "token": s.token, "after": before, "client": s.client})
        last[s.row] = s.token
    return broken


def fencing_monotonic(ctx, result):
    """The fencing tokens the storage accepted are strictly increasing (per row)."""
    if not result:
        return Check(None, "the run ended before any fenced write")
    storage = _storage(ctx, result)
    writes = storage.fenced_writes()
    if not writes:
        return Check(None, "no fenced write reached the storage")
    broken = token_regressions(writes, storage.sections())
    evidence = {
        "accepted": [w["token"] for w in writes if w["accepted"]][:MAX_EVIDENCE],
        "rejected": [
            {"client": w["client"], "token": w["token"], "last": w["last_token"]} for w in writes if not w["accepted"]
        ][:MAX_EVIDENCE],
        "regressions": broken[:MAX_EVIDENCE],
    }
    return Check(not broken, evidence)


def redlock_majority(ctx, result):
    """Redlock grants the lock only with a majority of the nodes: while a majority is up some
    attempt succeeds, and with a majority down every attempt is refused. The grants are counted
    again from the critical sections the storage logged."""
    if not result or "phases" not in result:
        return Check(None, "the run ended before its phases")
    quorum, nodes = result["quorum"], result["nodes"]
    broken = []
    for phase in result["phases"]:
        up = nodes - len(phase["down"])
        if up >= quorum and not phase["acquired"]:
            broken.append({"down": phase["down"], "problem": f"{up} nodes up, yet no client got the lock"})
        if up < quorum and phase["acquired"]:
            broken.append({"down": phase["down"], "problem": f"only {up} nodes up, yet {phase['acquired']} grants"})
        few = [g for g in phase["grants"] if len(g["votes"]) < quorum]
        if few:
            broken.append({"down": phase["down"], "problem": "granted without a majority", "grants": few})
    sections = len(_storage(ctx, result).sections())
    granted = sum(phase["acquired"] for phase in result["phases"])
    if sections != granted:
        broken.append({"problem": f"{granted} grants but {sections} critical sections in the storage"})
    evidence = {
        "quorum": quorum,
        "phases": [
            {"down": ph["down"], "acquired": ph["acquired"], "refused": ph["refused"]} for ph in result["phases"]
        ],
        "broken": broken,
    }
    return Check(not broken, evidence)
