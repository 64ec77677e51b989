"""Invariants of the diagnostics lab. They take the nodes and the numbers asked for from the run's
inputs (its nodes, its parameters), not from what the engine reports it did."""

from apps.runs.registry import Check, counted

PARTS = ("mariadb", "redis", "zookeeper")


def all_nodes_answered(ctx, result):
    """Every node of the run answered every one of its rounds of probes. What each probe got is
    the prober's operation history (what it saw on the wire); which nodes and how many rounds there
    should have been come from the run's nodes and parameters, so a node never probed counts too."""
    pings = ctx.history.completed("ping")
    if not pings:
        return Check(None, "no probe completed")
    rounds = ctx.params["rounds"]
    answered = {ctx.nodes.roles[part]: 0 for part in PARTS}
    failures = []
    for op in pings:
        if op["type"] == "ok" and op["value"] in answered:
            answered[op["value"]] += 1
        else:
            failures.append({"node": op["value"], "error": op.get("error")})
    short = {node: n for node, n in answered.items() if n < rounds}
    if short:
        where = ", ".join(f"{node} answered {n} of {rounds}" for node, n in short.items())
        summary = f"{counted(sum(rounds - n for n in short.values()), 'probe')} went unanswered ({where})"
    elif failures:
        summary = f"{counted(len(failures), 'probe')} of a node the run does not have"
    else:
        summary = f"every node answered all {counted(rounds, 'round')}"
    evidence = {"summary": summary, **{node: f"{n} of {rounds} answered" for node, n in answered.items()}}
    if failures:
        evidence["failures"] = failures
    return Check(not failures and all(n == rounds for n in answered.values()), evidence)


def every_event_recorded(ctx, result):
    """The stored events are exactly 1..N with no gap, and there are at least as many as the load
    events the run was asked for (plus the generator's `node` event)."""
    if ctx.recorded is None:
        return Check(None, "this run has no event store to read back")
    count, last = ctx.recorded()
    expected = ctx.params["events"]
    evidence = {"stored": count, "last_seq": last, "load_events": expected}
    if not result:
        return Check(None, evidence)
    return Check(count == last and count >= expected + 1, evidence)
