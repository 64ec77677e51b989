"""Invariants of the cache lab, judged from the run's history (what each client was served, what
each write committed, as the clients saw it) and from the real final data, read again over
connections of the checker's own: the items table and every cached entry of the run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

import redis

from apps.runs.registry import Check, counted

from .engine.races import delayed_keys
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


def stale_reads(ctx, bound_ms: float = 0.0, keys: Collection[str] | None = None) -> list[dict]:
    """Reads that returned a version older than one whose write was acknowledged before the read
    began (more than `bound_ms` before it); only the reads of `keys` when given."""
    writes = defaultdict(list)  # key -> [(acknowledged at, version, client)]
    for w in _ops(ctx, "write"):
        writes[w["value"]["key"]].append((w["time"], w["value"]["version"], w["process"]))
    stale = []
    for r in _ops(ctx, "read"):
        key, version = r["value"]["key"], r["value"]["version"]
        if keys is not None and key not in keys:
            continue
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


def no_stale_read(ctx, result, bound_ms: float = 0.0, keys: Collection[str] | None = None):
    """No read returned a version older than one whose write was acknowledged before it began
    (more than `bound_ms` before it); only the reads of `keys` when given.

    The evidence tells, per key, when stale reads were served (`windows_s`, first and last) and the
    stale window (`windows_ms`): how long after the newer write was acknowledged a read was still
    served an older version."""
    if not result:
        return Check(None, NOT_REACHED)
    stale = stale_reads(ctx, bound_ms, keys)
    reads = sum(1 for r in _ops(ctx, "read") if keys is None or r["value"]["key"] in keys)
    windows, window_ms = {}, {}
    for s in stale:
        first, last = windows.get(s["key"], (s["read_at_s"], s["read_at_s"]))
        windows[s["key"]] = (min(first, s["read_at_s"]), max(last, s["read_at_s"]))
        window_ms[s["key"]] = max(window_ms.get(s["key"], 0.0), s["behind_ms"])
    summary = (
        f"no stale read in {reads} reads"
        if not stale
        else f"{len(stale)} of {reads} reads were stale, on {counted(len(windows), 'key')}, e.g. "
        f"{stale[0]['client']} was served {stale[0]['key']} v{stale[0]['served']} {stale[0]['behind_ms']:.0f} ms "
        f"after v{stale[0]['newer']['version']} was acknowledged; stale windows up to "
        f"{max(window_ms.values()):.0f} ms"
    )
    evidence = {
        "summary": summary,
        "reads": reads,
        "stale": len(stale),
        "windows_s": {k: [a, b] for k, (a, b) in sorted(windows.items())},
        "windows_ms": dict(sorted(window_ms.items())),
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


def convergence(ctx, result, keys: Collection[str] | None = None):
    """At the end every cached entry holds its row's version (only the entries of `keys` when given)."""
    if not result:
        return Check(None, NOT_REACHED)
    store = Store(ctx.nodes, result.get("redis_node"))
    rows = store.read_rows()
    cached = _cached(ctx, store)
    if keys is not None:
        cached = {k: c for k, c in cached.items() if k in keys}
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
    rows = store.read_rows()
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


def stale_after_double_delete(ctx, result):
    """double-delete's sweep: on every key whose second delete came later than the reader's
    read-plus-set time, no read was stale more than that delay after the write was acknowledged.
    Keys with a shorter delay are measured, not judged: there the old value stays until the TTL."""
    if not result:
        return Check(None, NOT_REACHED)
    reader_ms = ctx.params["reader_ms"]
    sweep, broken = [], []
    for key, delay_ms in delayed_keys(reader_ms):
        stale = stale_reads(ctx, bound_ms=delay_ms, keys={key})
        above = delay_ms > reader_ms
        sweep.append({"key": key, "delay_ms": delay_ms, "above_read_plus_set": above, "stale_reads": len(stale)})
        if above:
            broken.extend(stale)
    judged = [s for s in sweep if s["above_read_plus_set"]]
    below = [s for s in sweep if not s["above_read_plus_set"]]
    summary = (
        f"no stale read after the second delete on the {counted(len(judged), 'key')} whose delay exceeds "
        f"the reader's {reader_ms} ms; {sum(s['stale_reads'] for s in below)} stale reads on the "
        f"{counted(len(below), 'key')} with shorter delays"
        if not broken
        else f"{counted(len(broken), 'stale read')} after a second delete that came later than the "
        f"reader's {reader_ms} ms, e.g. {broken[0]['client']} was served {broken[0]['key']} v{broken[0]['served']}"
    )
    return Check(not broken, {"summary": summary, "sweep": sweep, "stale_reads": broken[:SHOWN]})
