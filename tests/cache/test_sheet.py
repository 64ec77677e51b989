"""The cache sheet parses, and every run checkpoint on it can be passed: a real run of its scenario,
with parameters that meet its constraints, is judged to pass it."""

import pytest

from tests.lab_runs import LabRuns

RUNS = LabRuns("cache")
# For each run checkpoint, the parameters of a run meeting it (None: the defaults, a run shared
# with the narration test).
MEETING = {
    "cache-aside-passes": None,
    "stale-set-fails": None,
    "leases-pass": None,
    "update-side-fails": None,
    "herd-protected": None,
    "write-behind-loses": None,
    "near-cache-breaks": {"flush_on_reconnect": False},
    "sharding-stale-entries": {"delete_moved": False},
}


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    RUNS.check_sheet(MEETING)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    RUNS.check_checkpoint(request, checkpoint_id, MEETING[checkpoint_id])
