"""Caption builders for the sync lab's narration: every scenario's events share a few shapes (the
workload's phases, the long transaction, the checker's verdicts), keyed here once."""

from apps.runs.registry import Caption


def phase(text, name, actor=""):
    """At the phase event `name` (load, start, workload, catch-up)."""
    return Caption(text, "phase", actor=actor, data={"phase": name})


def state(text, type_, label="", actor="", **data):
    """At a state event of this `type` whose data holds `data`."""
    return Caption(text, "state", label=label, actor=actor, data={"type": type_, **data})


def cmd(text, label, actor="", **data):
    """At a command whose label contains `label`."""
    return Caption(text, "cmd", label=label, actor=actor, data=data)


def fault(text, kind):
    """At a fault of this kind, the scenario's own or a user's."""
    return Caption(text, "fault", data={"kind": kind})


def check(text, name, held):
    """At the checker's verdict on the invariant `name`."""
    return Caption(text, "check", data={"name": name, "held": held})


WORKLOAD = phase("The workload starts writing to A (inserts, updates, deletes) while the syncer runs.", "workload")
LATE_OPEN = state(
    "A long transaction writes to A and stays open: until it commits, nobody else can see its rows.",
    "late",
    state="open",
)
CATCH_UP = phase(
    "The workload has stopped: the syncer gets a last chance to catch up before the checker looks.", "catch-up"
)
MATCHED = Caption("B matched A after the last write: the syncer caught up.", "metric", label="B matched A")
NEVER_MATCHED = Caption(
    "B never matched A, not even after the catch-up: what it lacks, it lacks for good.",
    "metric",
    label="B never matched A",
)


def late_committed(text):
    return state(text, "late", state="committed")


# The applier's shapes (cdc-crash-replay and the others of scenarios_apply.py).
B_SNAPSHOT = state(
    "B holds a snapshot of A and the binlog position it matches: the applier's first offset.",
    "load",
    actor="B",
)
APPLIER_STARTED = state(
    "An applier process starts and reads its offset from B: it streams A's binlog from there.",
    "applier",
    state="started",
)


def account(text):
    """At the applier's account of its lives, told once the run is over."""
    return Caption(text, "log", data={"type": "applier-account"})
