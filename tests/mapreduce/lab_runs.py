"""MapReduce scenarios run once per set of parameters on the session's two workers and kept: the
narration test and the sheet test judge the same runs, so each run is paid for once."""

from typing import NamedTuple

from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine

# Small inputs, as in test_scenarios.py: the same phases and faults in a fraction of the time. The
# straggler's default input is already small, and its slow worker sleeps on every record.
SMALL = {"size_limit": 1_500_000, "maps": 4, "reduces": 2}
NARRATED = {name: SMALL for name in ("wordcount", "inverted-index", "grep", "worker-crash", "no-combiner")}
NARRATED["log-top-urls"] = {**SMALL, "size_limit": 800_000}
NARRATED["straggler"] = {}


class Recorded(NamedTuple):
    params: dict  # clean, as the run stored them
    verdict: str
    events: list


_recorded = {}


def recorded(name, params=None):
    """The run of scenario `name` with `params` (the workers must be running: mapreduce_workers)."""
    key = (name, tuple(sorted((params or {}).items())))
    if key not in _recorded:
        ctx, _result, checks, events = run_engine(get_scenario("mapreduce", name), lab_node_urls(), params, seed=11)
        _recorded[key] = Recorded(ctx.params, verdict_of(checks), events)
    return _recorded[key]
