"""Invariants of the transactions lab. A checker takes nothing from the engine's account of the
run: it draws the planned transfers again from the run's seed and parameters (the inputs), and
reads what the servers hold now over connections of its own. The engine's result only says whether
the run got as far as its transfers."""

import random

from apps.runs.registry import Check, counted

from .engine.bank import Participant, Transfer, participants_of, plan
from .engine.xa import in_doubt, xid

NOT_REACHED = "the run ended before its transfers"


def _bank(ctx) -> tuple[list[Participant], list[Transfer]]:
    """The participants and the transfers the run was asked to make, from its inputs."""
    participants = participants_of(ctx)
    return participants, plan(ctx.params, random.Random(ctx.seed), ctx.run_id, participants)


def _query(ctx, participant: Participant, statement: str) -> tuple:
    conn = participant.connect(ctx)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.close()


def ledgers(ctx, participants: list[Participant] | None = None) -> dict[str, dict[str, int]]:
    """{participant: {gtrid: delta}} as committed in each participant's database."""
    participants = participants if participants is not None else _bank(ctx)[0]
    return {p.name: dict(_query(ctx, p, "SELECT gtrid, delta FROM ledger")) for p in participants}


def atomicity(ctx, result):
    """Every global transaction committed on all its participants or on none, and no participant
    holds a committed branch of a transfer that was never planned."""
    if not result:
        return Check(None, NOT_REACHED)
    participants, transfers = _bank(ctx)
    committed = ledgers(ctx, participants)
    broken = []
    for t in transfers:
        seen = {p: ("committed" if t.gtrid in committed[p] else "rolled back") for p in t.participants}
        if len(set(seen.values())) > 1:
            broken.append({"gtrid": t.gtrid, "branches": seen})
    planned = {t.gtrid for t in transfers}
    for p, ledger in committed.items():
        broken += [
            {"gtrid": g, "branches": {p: "committed"}, "unplanned": True} for g in sorted(ledger) if g not in planned
        ]
    everywhere = sum(all(t.gtrid in committed[p] for p in t.participants) for t in transfers)
    if broken:
        summary = f"{counted(len(broken), 'transfer')} committed on some participants only"
    else:
        summary = f"{everywhere} of {counted(len(transfers), 'transfer')} committed everywhere, the rest nowhere"
    evidence = {"summary": summary, "transfers": len(transfers), "committed": everywhere, "broken": broken}
    return Check(not broken, evidence)


def conservation(ctx, result):
    """The sum of all balances is what the parameters opened the accounts with."""
    if not result:
        return Check(None, NOT_REACHED)
    participants, _ = _bank(ctx)
    sums = {p.name: int(_query(ctx, p, "SELECT COALESCE(SUM(balance), 0) FROM accounts")[0][0]) for p in participants}
    expected = ctx.params["balance"] * ctx.params["accounts"] * len(participants)
    total = sum(sums.values())
    summary = f"the balances sum to {total}" + ("" if total == expected else f", not the {expected} opened")
    return Check(total == expected, {"summary": summary, "expected": expected, "found": total, "by_participant": sums})


def nothing_in_doubt(ctx, result):
    """XA RECOVER lists none of this run's branches on any participant."""
    if not result:
        return Check(None, NOT_REACHED)
    participants, _ = _bank(ctx)
    left = {}
    for p in participants:
        branches = in_doubt(ctx.run_id, p.name, _query(ctx, p, "XA RECOVER"))
        if branches:
            left[p.name] = [xid(g, b) for g, b in branches]
    branches = sum(len(b) for b in left.values())
    where = f" on {', '.join(left)}" if left else ""
    summary = f"{counted(branches, 'branch', 'branches')} left in doubt{where}" if left else "no branch left in doubt"
    return Check(not left, {"summary": summary, "in_doubt": left})


def durability(ctx, result):
    """Every transfer the clients were told had committed is in the data, on every participant."""
    if not result:
        return Check(None, NOT_REACHED)
    participants, transfers = _bank(ctx)
    by_gtrid = {t.gtrid: t for t in transfers}
    committed = ledgers(ctx, participants)
    acknowledged = [op["value"]["gtrid"] for op in ctx.history.completed("transfer") if op["type"] == "ok"]
    lost = []
    for gtrid in acknowledged:
        if gtrid not in by_gtrid:
            lost.append({"gtrid": gtrid, "error": "not a transfer the run planned"})
        elif missing := [p for p in by_gtrid[gtrid].participants if gtrid not in committed[p]]:
            lost.append({"gtrid": gtrid, "missing_on": missing})
    told = counted(len(acknowledged), "acknowledged transfer")
    summary = f"{len(lost)} of {told} missing from the data" if lost else f"all {told} are in the data"
    return Check(not lost, {"summary": summary, "acknowledged": len(acknowledged), "lost": lost})
