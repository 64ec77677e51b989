"""Invariants of the sharding scenario, from the real data read again over connections of the
checker's own: the keys are the items table's, the lists of nodes the ones the run recorded (the
schedule's changes and the buttons'), and every cached entry is read from every Redis node."""

from __future__ import annotations

import math
from collections import Counter

import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from apps.runs.registry import Check

from .checkers import NOT_REACHED, SHOWN
from .engine.sharding import NODES, SCHEMES, START, placements
from .engine.store import Store, decode

# Slack on top of the sampling error: a ketama ring's arcs are not exactly equal (160 points per node).
RING_SLACK = 0.05


def _rows(ctx) -> dict[str, tuple[int, str]]:
    return Store(ctx.nodes, NODES[0]).read_rows()


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


def membership_of(result) -> list[tuple[str, ...]]:
    """The lists of nodes the run served over, in order, as it recorded them."""
    return [tuple(nodes) for nodes in result.get("membership") or [START]]


def _slot_shares(ranges: list[list]) -> dict[str, int]:
    held: Counter = Counter()
    for first, last, node in ranges:
        held[node] += last - first + 1
    return dict(held)


def judge_change(scheme: str, keys: list[str], change: dict, was: dict, now: dict) -> dict:
    """One change of nodes for one placement: the keys the run moved against the ones the scheme
    moves (replayed from the recorded nodes over the table's keys), and the share against its
    promise."""
    before, after = tuple(change["before"]), tuple(change["after"])
    expected = {k: [was[k], now[k]] for k in keys if was[k] != now[k]}
    known = set(keys)
    recorded = {k: list(v) for k, v in (change.get("moved") or {}).get(scheme, {}).items() if k in known}
    wrong = sorted(set(expected) ^ set(recorded) | {k for k in expected if recorded.get(k, expected[k]) != expected[k]})
    share = len(expected) / len(keys)
    ideal = ideal_share(scheme, before, after)
    tolerance = 3 * math.sqrt(ideal * (1 - ideal) / len(keys)) + RING_SLACK
    changed = set(before) ^ set(after)
    # Keys that moved between two nodes that were there before and after: what consistent hashing
    # exists to avoid.
    elsewhere = [k for k, (a, b) in expected.items() if not ({a, b} & changed)]
    verdict = {
        "scheme": scheme,
        "nodes": f"{len(before)} → {len(after)}",
        "change": f"{change.get('node')} {'joins' if change.get('kind') == 'add' else 'leaves'}",
        "by": change.get("by"),
        "moved": len(expected),
        "share": round(share, 3),
        "ideal": round(ideal, 3),
        "tolerance": round(tolerance, 3),
        "moved_between_other_nodes": len(elsewhere),
        "misplaced_by_the_run": len(wrong),
        "misplaced_examples": [{"key": k, "run": recorded.get(k), "scheme": expected.get(k)} for k in wrong[:SHOWN]],
    }
    problems = []
    if abs(share - ideal) > tolerance:
        problems.append(f"moved {share:.0%} of the keys (about {ideal:.0%} expected)")
    if scheme != "modulo" and elsewhere:
        problems.append(f"moved {len(elsewhere)} keys between nodes that did not change")
    if wrong:
        problems.append(f"the run moved {len(wrong)} keys otherwise than the scheme places them (e.g. {wrong[0]})")
    if scheme == "slots" and change.get("slots"):
        held = _slot_shares(change["slots"])
        fair = {REDIS_CLUSTER_HASH_SLOTS // len(after), -(-REDIS_CLUSTER_HASH_SLOTS // len(after))}
        if set(held) != set(after) or not set(held.values()) <= fair:
            problems.append(f"the slot map does not give every node its share: {held}")
        verdict["slots_held"] = held
    verdict["problems"] = problems
    return verdict


def moved_share(ctx, result):
    """At every change of the nodes the run recorded (the schedule's, and each add or remove a
    button made), each placement moved the keys its scheme moves, the share it promises (modulo
    about (N-1)/N, ketama and slots about 1/N), and ketama and slots only to the node that joins
    or from the node that leaves; the slot map gives every node its share of the 16384 slots."""
    if not result:
        return Check(None, NOT_REACHED)
    keys = sorted(_rows(ctx))
    if not keys:
        return Check(None, "the items table is empty")
    membership = membership_of(result)
    recorded = result.get("changes") or []
    changes, broken = [], []
    for scheme in SCHEMES:
        phases = placements(scheme, keys, tuple(membership))
        for i, change in enumerate(recorded):
            verdict = judge_change(scheme, keys, change, phases[i], phases[i + 1])
            changes.append(verdict)
            if verdict["problems"]:
                broken.append(verdict)
    shown = "; ".join(f"{c['scheme']} {c['nodes']} moved {c['share']:.0%} (about {c['ideal']:.0%})" for c in changes)
    if not recorded:
        summary = f"the nodes never changed ({len(membership[0])} nodes): no key moved"
    elif not broken:
        summary = f"every scheme moved the share it promises over {len(keys)} keys at {len(recorded)} changes: {shown}"
    else:
        b = broken[0]
        summary = f"{b['scheme']} {b['nodes']} ({b['change']}) {'; '.join(b['problems'])}: {shown}"
    return Check(not broken, {"summary": summary, "keys": len(keys), "membership": membership, "changes": changes})


def _entries(ctx) -> list[dict]:
    """Every cached entry on every Redis node of the run: {node, scheme, key, version}."""
    store = Store(ctx.nodes, NODES[0])
    prefix = store.cache_key("")
    found = []
    for node in NODES:
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
    membership = tuple(membership_of(result))
    final = {scheme: placements(scheme, keys, membership)[-1] for scheme in SCHEMES}
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
