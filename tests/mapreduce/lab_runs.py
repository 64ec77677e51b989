"""The MapReduce runs the narration test and the sheet test share, on the session's two workers
(the tests ask for them: mapreduce_workers)."""

from tests.lab_runs import LabRuns

# Small inputs, as in test_scenarios.py: the same phases and faults in a fraction of the time. The
# straggler's default input is already small, and its slow worker sleeps on every record.
SMALL = {"size_limit": 1_500_000, "maps": 4, "reduces": 2}
NARRATED = {name: SMALL for name in ("wordcount", "inverted-index", "grep", "worker-crash", "no-combiner")}
NARRATED["log-top-urls"] = {**SMALL, "size_limit": 800_000}
NARRATED["straggler"] = {}
RUNS = LabRuns("mapreduce", NARRATED, seed=11)
