"""Invariants of the diagnostics lab."""

from apps.runs.registry import Check


def all_nodes_answered(ctx, result):
    """Every probe of every node got an answer: judged from the operation history."""
    failed = [op for op in ctx.history.completed("ping") if op["type"] != "ok"]
    asked = {}
    for op in ctx.history.completed("ping"):
        asked.setdefault(op["value"], [0, 0])
        asked[op["value"]][0] += 1
        asked[op["value"]][1] += op["type"] == "ok"
    if not asked:
        return Check(None, "no probe completed")
    evidence = {node: f"{ok} of {n} answered" for node, (n, ok) in asked.items()}
    if failed:
        evidence["failures"] = [{"node": op["value"], "error": op.get("error")} for op in failed]
    return Check(not failed, evidence)


def every_event_recorded(ctx, result):
    """The stored events are exactly 1..N with no gap, and all the load events are among them."""
    if ctx.recorded is None:
        return Check(None, "this run has no event store to read back")
    count, last = ctx.recorded()
    expected = result["emitted"] if result else None
    evidence = {"stored": count, "last_seq": last, "load_events": expected}
    if expected is None:
        return Check(None, evidence)
    # The stream holds the load events plus the generator's `node` event.
    return Check(count == last and count >= expected + 1, evidence)
