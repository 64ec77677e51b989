"""Invariants of the cache lab, judged from the run's history (what each client was served, what
each write committed, as the clients saw it) and from the real final data, read again over
connections of the checker's own: the items table and every cached entry of the run."""

from __future__ import annotations

from collections import defaultdict

import redis

from apps.runs.registry import Check

from .engine.store import Store, decode

NOT_REACHED = "the run ended before its clients ran"
SHOWN = 20


def _ops(ctx, f: str) -> list[dict]:
    """Completed-ok operations of `f`, each with its invocation time (`began`, ms of the run)."""
    invoked = {op["index"]: op for op in ctx.history.ops if op["type"] == "invoke"}
    done = []
    for op in ctx.history.completed(f):
        if op["type"] == "ok" and isinstance(op.get("value"), dict):
            done.append({**op, "began": invoked[op["invoke_index"]]["time"]})
    return done


def stale_reads(ctx, bound_ms: float = 0.0) -> list[dict]:
    """Reads that returned a version older than one whose write was acknowledged before the read
    began (more than `bound_ms` before it)."""
    writes = defaultdict(list)  # key -> [(acknowledged at, version, client)]
    for w in _ops(ctx, "write"):
        writes[w["value"]["key"]].append((w["time"], w["value"]["version"], w["process"]))
    stale = []
    for r in _ops(ctx, "read"):
        key, version = r["value"]["key"], r["value"]["version"]
        newer = [w for w in writes[key] if w[0] + bound_ms < r["began"] and w[1] > version]
        if newer:
            at, new_version, writer = max(newer, key=lambda w: w[1])
            stale.append(
                {
                    "key": key,
                    "client": r["process"],
                    "served": version,
                    "from": r["value"].get("from"),
                    "read_at_s": round(r["began"] / 1000.0, 3),
                    "newer": {"version": new_version, "by": writer, "acknowledged_at_s": round(at / 1000.0, 3)},
                    "behind_ms": round(r["began"] - at, 1),
                }
            )
    return stale


def no_stale_read(ctx, result, bound_ms: float = 0.0):
    """No read returned a version older than one whose write was acknowledged before it began."""
    if not result:
        return Check(None, NOT_REACHED)
    stale = stale_reads(ctx, bound_ms)
    reads = len(_ops(ctx, "read"))
    windows = {}
    for s in stale:
        first, last = windows.get(s["key"], (s["read_at_s"], s["read_at_s"]))
        windows[s["key"]] = (min(first, s["read_at_s"]), max(last, s["read_at_s"]))
    summary = (
        f"no stale read in {reads} reads"
        if not stale
        else f"{len(stale)} of {reads} reads were stale, on {len(windows)} keys, e.g. {stale[0]['client']} "
        f"was served {stale[0]['key']} v{stale[0]['served']} {stale[0]['behind_ms']:.0f} ms after "
        f"v{stale[0]['newer']['version']} was acknowledged"
    )
    evidence = {
        "summary": summary,
        "reads": reads,
        "stale": len(stale),
        "windows_s": {k: [a, b] for k, (a, b) in sorted(windows.items())},
        "stale_reads": stale[:SHOWN],
    }
    return Check(not stale, evidence)


def _cached(ctx, store: Store) -> dict[str, tuple[int, int]]:
    """{key: (cached version, remaining ms)} of every entry the run's cache holds, read anew."""
    client = redis.Redis.from_url(ctx.nodes.redis_address(store.redis_node), socket_timeout=5, decode_responses=True)
    prefix = store.cache_key("")
    try:
        found = {}
        for name in client.scan_iter(match=prefix + "*", count=1000):
            entry = decode(client.get(name))
            if entry is not None:
                found[name[len(prefix) :]] = (entry[0], client.pttl(name))
        return found
    finally:
        client.close()


def convergence(ctx, result):
    """At the end every cached entry holds its row's version."""
    if not result:
        return Check(None, NOT_REACHED)
    store = Store(ctx.nodes, result.get("redis_node"))
    conn = store.db()
    try:
        rows = store.rows(conn)
    finally:
        conn.close()
    cached = _cached(ctx, store)
    differing = [
        {"key": k, "cached": v, "row": rows[k][0] if k in rows else None, "expires_in_ms": ttl}
        for k, (v, ttl) in sorted(cached.items())
        if k not in rows or rows[k][0] != v
    ]
    summary = (
        f"all {len(cached)} cached entries equal their rows"
        if not differing
        else f"{len(differing)} of {len(cached)} cached entries differ from their rows, e.g. "
        f"{differing[0]['key']} cached v{differing[0]['cached']}, row v{differing[0]['row']}"
    )
    return Check(not differing, {"summary": summary, "cached": len(cached), "differing": differing[:SHOWN]})


def acknowledged_writes(ctx, result):
    """Every write a client was told succeeded is in the items table (its version or a later one)."""
    if not result:
        return Check(None, NOT_REACHED)
    store = Store(ctx.nodes, result.get("redis_node"))
    conn = store.db()
    try:
        rows = store.rows(conn)
    finally:
        conn.close()
    acked: dict[str, dict] = {}
    for w in _ops(ctx, "write"):
        key = w["value"]["key"]
        if key not in acked or w["value"]["version"] > acked[key]["version"]:
            acked[key] = {"version": w["value"]["version"], "by": w["process"], "at_s": round(w["time"] / 1000.0, 3)}
    lost = [
        {"key": k, "acknowledged": a, "row": rows.get(k, (None,))[0]}
        for k, a in sorted(acked.items())
        if rows.get(k, (0,))[0] < a["version"]
    ]
    summary = (
        f"all {len(acked)} acknowledged writes are in the table"
        if not lost
        else f"{len(lost)} acknowledged writes lost, e.g. {lost[0]['key']} v{lost[0]['acknowledged']['version']} (the row has v{lost[0]['row']})"
    )
    return Check(not lost, {"summary": summary, "keys_written": len(acked), "lost": lost[:SHOWN]})
