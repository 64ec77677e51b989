"""Scenarios on the shared MariaDB (A and B are two databases of the run): no binlog is read and no
server is stopped."""

from apps.runs.registry import Scenario

from . import common
from .engine.driver import run_sync
from .engine.naive import NaiveLoop


def naive_latest(ctx):
    return run_sync(ctx, NaiveLoop)


SCENARIOS = (
    Scenario(
        name="naive-latest",
        title="The naive loop: copy the newest row",
        summary=(
            "The loop as people first write it: read A's newest row (`ORDER BY id DESC LIMIT 1`), "
            "insert it into B, commit, retry a few times on an error. While the workload writes, "
            "two inserts between two looks leave the first behind, and no update or delete is ever "
            "copied: the checker lists the keys B is missing."
        ),
        engine=naive_latest,
        params=common.params(),
        invariants=common.INVARIANTS,
        expected="fail",
    ),
)
