"""Invariants of the transactions lab, read from the real rows over new connections: what the
servers hold, not what the engine believes."""

from apps.runs.registry import Check

from .engine import Participant, in_doubt


def _participants(result):
    return [Participant(**p) for p in result["participants"]]


def _ledgers(ctx, result):
    """{participant: {gtrid: delta}} as committed in each participant's database."""
    ledgers = {}
    for p in _participants(result):
        conn = p.connect(ctx)
        with conn.cursor() as cur:
            cur.execute("SELECT gtrid, delta FROM ledger")
            ledgers[p.name] = dict(cur.fetchall())
        conn.close()
    return ledgers


def atomicity(ctx, result):
    """Every global transaction committed on all its participants or on none."""
    if not result:
        return Check(None, "the run ended before its transfers")
    ledgers = _ledgers(ctx, result)
    broken = []
    for t in result["transfers"]:
        seen = {p: ("committed" if t["gtrid"] in ledgers[p] else "rolled back") for p in t["participants"]}
        if len(set(seen.values())) > 1:
            broken.append({"gtrid": t["gtrid"], "branches": seen})
    committed = sum(all(t["gtrid"] in ledgers[p] for p in t["participants"]) for t in result["transfers"])
    evidence = {"transfers": len(result["transfers"]), "committed": committed, "broken": broken}
    return Check(not broken, evidence)


def conservation(ctx, result):
    """The sum of all balances is what it was at the start."""
    if not result:
        return Check(None, "the run ended before its transfers")
    sums = {}
    for p in _participants(result):
        conn = p.connect(ctx)
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(balance), 0) FROM accounts")
            sums[p.name] = int(cur.fetchone()[0])
        conn.close()
    total = sum(sums.values())
    return Check(total == result["total"], {"expected": result["total"], "found": total, "by_participant": sums})


def nothing_in_doubt(ctx, result):
    """XA RECOVER lists none of this run's branches on any participant."""
    if not result:
        return Check(None, "the run ended before its transfers")
    left = {}
    for p in _participants(result):
        conn = p.connect(ctx)
        with conn.cursor() as cur:
            cur.execute("XA RECOVER")
            branches = in_doubt(ctx, p, cur.fetchall())
        conn.close()
        if branches:
            left[p.name] = [f"'{g}','{b}'" for g, b in branches]
    return Check(not left, {"in_doubt": left})


def durability(ctx, result):
    """Every transfer the history reports committed is in the data, on every participant."""
    if not result:
        return Check(None, "the run ended before its transfers")
    ledgers = _ledgers(ctx, result)
    acknowledged = [op["value"] for op in ctx.history.completed("transfer") if op["type"] == "ok"]
    lost = [
        {"gtrid": t["gtrid"], "missing_on": [p for p in t["participants"] if t["gtrid"] not in ledgers[p]]}
        for t in acknowledged
        if any(t["gtrid"] not in ledgers[p] for p in t["participants"])
    ]
    return Check(not lost, {"acknowledged": len(acknowledged), "lost": lost})
