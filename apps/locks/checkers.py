"""Invariants of the locks lab, read from the storage itself over new connections: what MariaDB
holds and stamped with its own clock, not what the clients believe.

Every engine returns a result with `storage` (Storage.describe()) and `acknowledged` (the
increments the clients were told succeeded); the ZooKeeper checkers count the watch notifications
the clients' watchers received, as recorded in the run's history. The pure functions (`overlaps`,
`token_regressions`, `handover_breaks`) take plain rows, so they can be tested on their own.
"""

from collections import Counter

from apps.runs.engine_api import Context
from apps.runs.registry import Check, counted

from .engine.storage import Storage
from .engine.zk_recipe import WATCH_OP

MAX_EVIDENCE = 20


def _storage(ctx, result):
    return Storage.reopen(ctx.nodes, result["storage"])


def _conflict(a, b):
    """Two sections must not overlap when they touch the same row (None: the whole resource) and
    at least one of them writes."""
    same = a.row is None or b.row is None or a.row == b.row
    return same and not (a.mode == "read" and b.mode == "read")


def _problems(broken: list[dict]) -> str:
    """The evidence's summary of its problems: how many, and the first."""
    if not broken:
        return ""
    first = broken[0]["problem"]
    return first if len(broken) == 1 else f"{counted(len(broken), 'problem')}, first: {first}"


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
    told = counted(len(sections), "critical section")
    evidence = {
        "summary": f"{counted(len(pairs), 'pair')} of {told} overlapped" if pairs else f"none of {told} overlapped",
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
    lost = acknowledged - final
    evidence = {
        "summary": f"{counted(lost, 'acknowledged increment')} lost: the counter is {final}, {acknowledged} were acknowledged"
        if lost > 0
        else f"the counter is {final}, {acknowledged} acknowledged",
        "acknowledged": acknowledged,
        "final": final,
        "lost": lost,
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
    accepted = sum(1 for w in writes if w["accepted"])
    evidence = {
        "summary": f"{counted(len(broken), 'accepted token')} not above the one before"
        if broken
        else f"{counted(accepted, 'accepted token')}, strictly increasing; {counted(len(writes) - accepted, 'stale write')} refused",
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
        "summary": _problems(broken) or f"{granted} grants, each with a majority of {nodes}",
        "quorum": quorum,
        "phases": [
            {"down": ph["down"], "acquired": ph["acquired"], "refused": ph["refused"]} for ph in result["phases"]
        ],
        "broken": broken,
    }
    return Check(not broken, evidence)


# ZooKeeper: notifications as the clients' watchers received them -------------------------------
# The recipe records every notification kazoo delivered to a client in the run's history (a
# `watch` operation: path, type, session), before the engine does anything with it; each lock
# operation's completion names the znode it held. These checkers count from those records only.
NOTIFYING = ("DELETED", "CHILD")  # NONE: a session ended and its watches went with it


def watch_notifications(ops: list[dict], path: str | None = None) -> list[dict]:
    """The notifications received, [{index, client, path, type, session}], of the lock at `path`
    (a CHILD event names the lock's path, a DELETED one a znode under it) or of every lock."""
    notes = []
    for op in ops:
        if op["f"] != WATCH_OP or op["type"] != "ok" or op["value"]["type"] not in NOTIFYING:
            continue
        note = {"index": op["index"], "client": op["process"], **op["value"]}
        lock = note["path"] if note["type"] == "CHILD" else note["path"].rsplit("/", 1)[0]
        if path is None or lock == path:
            notes.append(note)
    return notes


def handover_breaks(ops: list[dict], path: str | None = None) -> tuple[dict, list[dict]]:
    """Whether every hand-over of the lock (at `path`, or any) took exactly one notification, from
    the history's records: (counts, broken). Nobody watched the lock's parent (no CHILD event); no
    znode's deletion woke two watchers; each notification of a holder's znode going came to a client
    while it was acquiring, and no acquisition was woken by two of them."""
    notes = watch_notifications(ops, path)
    # Each lock operation, from its invocation to its completion: when its client was acquiring.
    windows = [op for op in ops if op["type"] != "invoke" and op["f"] in ("increment", "read")]
    holders = {w["value"]["znode"] for w in windows if isinstance(w.get("value"), dict) and w["value"].get("znode")}
    woken = Counter(n["path"] for n in notes if n["type"] == "DELETED")
    releases = [n for n in notes if n["type"] == "DELETED" and n["path"] in holders]
    broken = []
    child = [n for n in notes if n["type"] == "CHILD"]
    if child:
        broken.append({"problem": f"{len(child)} notifications of the lock's children: someone watched the parent"})
    twice = {z: k for z, k in woken.items() if k > 1}
    if twice:
        broken.append({"problem": "a znode's deletion woke more than one watcher", "znodes": twice})
    per_window = Counter()
    for n in releases:
        window = next(
            (w for w in windows if w["process"] == n["client"] and w["invoke_index"] < n["index"] < w["index"]), None
        )
        if window is None:
            broken.append({"problem": f"{n['client']} was notified while not acquiring", "notification": n})
        else:
            per_window[window["index"]] += 1
    doubled = [w for w in windows if per_window[w["index"]] > 1]
    if doubled:
        broken.append({"problem": "an acquisition was woken by more than one release", "operations": doubled})
    counts = {
        "notifications": len(notes),
        "child_notifications": len(child),
        "handovers": sum(1 for k in per_window.values() if k == 1),
        "woken_by_releases": len(releases),
        "most_woken_by_one_znode": max(woken.values(), default=0),
    }
    return counts, broken


def one_notification_per_handover(ctx: Context, result: dict | None) -> Check:
    """Every hand-over took exactly one watch notification, as the clients' watchers received
    them: each holder's znode going woke one client, its successor, and no one watched the parent."""
    ops = ctx.history.ops
    if not any(op["f"] in ("increment", "read") for op in ops):
        return Check(None, "the run ended before any acquisition")
    counts, broken = handover_breaks(ops)
    told = counted(counts["handovers"], "hand-over")
    evidence = {
        "summary": _problems(broken) or f"{told}, one notification each",
        **counts,
        "broken": broken[:MAX_EVIDENCE],
    }
    if result and "zk" in result:
        evidence["engine_counted"] = result["zk"]["notifications"]
    return Check(not broken, evidence)


def herd_notifications(ctx: Context, result: dict | None) -> Check:
    """Counted from the notifications the watchers received, round by round: watching the
    predecessor costs exactly one per hand-over, watching the parent (the herd) costs more for the
    same clients, and the counts charted are the ones ZooKeeper delivered."""
    rounds = [op["value"] for op in ctx.history.completed("round") if op["type"] == "ok"]
    if not rounds:
        return Check(None, "the run ended before its first round")
    ops, broken, shown = ctx.history.ops, [], []
    recorded = {}
    for r in rounds:
        count = len(watch_notifications(ops, r["path"]))
        recorded[(r["clients"], r["herd"])] = count
        shown.append({"clients": r["clients"], "herd": r["herd"], "recorded": count, "charted": r["notifications"]})
        if count != r["notifications"]:
            broken.append({"path": r["path"], "problem": f"{r['notifications']} charted, {count} received"})
        if not r["herd"]:
            _, breaks = handover_breaks(ops, r["path"])
            broken.extend({"path": r["path"], **b} for b in breaks)
    for (k, herd), count in recorded.items():
        alone = recorded.get((k, False))
        if herd and alone is not None and not count > alone:
            broken.append({"clients": k, "problem": f"the herd cost {count}, no more than the predecessor's {alone}"})
    summary = _problems(broken) or f"{counted(len(shown), 'round')}, each charted as received"
    return Check(not broken, {"summary": summary, "rounds": shown, "broken": broken[:MAX_EVIDENCE]})
