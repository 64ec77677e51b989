"""Invariants of the sharding scenario, from the real data read again over connections of the
checker's own: the keys are the items table's, the node lists the scenario's, and every cached
entry is read from every Redis node."""

from __future__ import annotations

import math

import redis

from apps.runs.registry import Check

from .checkers import NOT_REACHED, SHOWN
from .engine.sharding import MEMBERSHIP, SCHEMES, placements
from .engine.store import Store, decode

# Slack on top of the sampling error: a ketama ring's arcs are not exactly equal (160 points per node).
RING_SLACK = 0.05


def _rows(ctx) -> dict[str, tuple[int, str]]:
    store = Store(ctx.nodes, MEMBERSHIP[0][0])
    conn = store.db()
    try:
        return store.rows(conn)
    finally:
        conn.close()


def ideal_share(scheme: str, before: tuple[str, ...], after: tuple[str, ...]) -> float:
    """The share of keys a change of nodes moves, for keys hashed uniformly."""
    n, m = len(before), len(after)
    if scheme == "modulo":
        # A hash h keeps its node when h % n == h % m; over one period lcm(n, m) that is min(n, m)
        # residues when one list extends the other (the residues below both).
        period = n * m // math.gcd(n, m)
        kept = sum(1 for h in range(period) if before[h % n] == after[h % m])
        return 1 - kept / period
    # Consistent hashing and slots move only the joining node's share, or the leaving node's.
    return abs(m - n) / max(n, m)


def moved_share(ctx, result):
    """Each placement moves, when the fourth node joins and when it leaves, the share of keys its
    scheme promises (modulo about (N-1)/N, ketama and slots about 1/N), and ketama and slots move
    keys only to the node that joins or from the node that leaves."""
    if not result:
        return Check(None, NOT_REACHED)
    keys = sorted(_rows(ctx))
    if not keys:
        return Check(None, "the items table is empty")
    changes, broken = [], []
    for scheme in SCHEMES:
        phases = placements(scheme, keys)
        for i in range(1, len(MEMBERSHIP)):
            before, after = MEMBERSHIP[i - 1], MEMBERSHIP[i]
            moved = [k for k in keys if phases[i - 1][k] != phases[i][k]]
            share = len(moved) / len(keys)
            ideal = ideal_share(scheme, before, after)
            tolerance = 3 * math.sqrt(ideal * (1 - ideal) / len(keys)) + RING_SLACK
            changed = set(before) ^ set(after)
            # Keys that moved between two nodes that were there before and after: what consistent
            # hashing exists to avoid.
            elsewhere = [k for k in moved if not ({phases[i - 1][k], phases[i][k]} & changed)]
            change = {
                "scheme": scheme,
                "nodes": f"{len(before)} → {len(after)}",
                "moved": len(moved),
                "share": round(share, 3),
                "ideal": round(ideal, 3),
                "tolerance": round(tolerance, 3),
                "moved_between_other_nodes": len(elsewhere),
            }
            changes.append(change)
            if abs(share - ideal) > tolerance or (scheme != "modulo" and elsewhere):
                broken.append(change)
    shown = "; ".join(f"{c['scheme']} {c['nodes']} moved {c['share']:.0%} (about {c['ideal']:.0%})" for c in changes)
    summary = (
        f"every scheme moved the share it promises over {len(keys)} keys: {shown}"
        if not broken
        else f"{broken[0]['scheme']} {broken[0]['nodes']} moved {broken[0]['share']:.0%} of the keys, "
        f"{broken[0]['moved_between_other_nodes']} between nodes that did not change (about "
        f"{broken[0]['ideal']:.0%} expected): {shown}"
    )
    return Check(not broken, {"summary": summary, "keys": len(keys), "changes": changes})


def _entries(ctx) -> list[dict]:
    """Every cached entry on every Redis node of the run: {node, scheme, key, version}."""
    store = Store(ctx.nodes, MEMBERSHIP[0][0])
    prefix = store.cache_key("")
    found = []
    for node in sorted({n for nodes in MEMBERSHIP for n in nodes}):
        client = redis.Redis.from_url(ctx.nodes.redis_address(node), socket_timeout=5, decode_responses=True)
        try:
            for name in client.scan_iter(match=prefix + "*", count=1000):
                entry = decode(client.get(name))
                scheme, _, key = name[len(prefix) :].partition(":")
                if entry is not None:
                    found.append({"node": node, "scheme": scheme, "key": key, "version": entry[0]})
        finally:
            client.close()
    return found


def placed(ctx, result):
    """At the end every cached entry is on the node its scheme assigns it over the final nodes, and
    holds its row's version."""
    if not result:
        return Check(None, NOT_REACHED)
    rows = _rows(ctx)
    keys = sorted(rows)
    final = {scheme: placements(scheme, keys)[-1] for scheme in SCHEMES}
    entries = _entries(ctx)
    misplaced, differing = [], []
    for e in entries:
        home = final.get(e["scheme"], {}).get(e["key"])
        if home != e["node"]:
            misplaced.append({**e, "assigned": home})
        elif rows[e["key"]][0] != e["version"]:
            differing.append({**e, "row": rows[e["key"]][0]})
    if misplaced:
        m = misplaced[0]
        summary = (
            f"{len(misplaced)} of {len(entries)} entries are not on their node, e.g. {m['scheme']} "
            f"{m['key']} on {m['node']}, assigned to {m['assigned']}"
        )
    elif differing:
        d = differing[0]
        summary = (
            f"{len(differing)} of {len(entries)} entries differ from their rows, e.g. {d['scheme']} "
            f"{d['key']} on {d['node']} v{d['version']}, row v{d['row']}"
        )
    else:
        summary = f"all {len(entries)} cached entries are on their nodes and equal their rows"
    evidence = {
        "summary": summary,
        "entries": len(entries),
        "misplaced": misplaced[:SHOWN],
        "differing": differing[:SHOWN],
    }
    return Check(not misplaced and not differing, evidence)
