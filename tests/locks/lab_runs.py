"""The locks runs the narration test and the sheet test share."""

from tests.lab_runs import LabRuns

# What each scenario's narration is checked at: its defaults, but for the paused lease holders a
# shorter TTL and pause, the same schedule (the pause outlasts the TTL) in a quarter of the time.
NARRATED = {
    "redis-lease-pause": {"ttl_ms": 500, "pause_ms": 2000},
    "redis-lease-fencing": {"ttl_ms": 500, "pause_ms": 2000},
}
RUNS = LabRuns("locks", NARRATED)
