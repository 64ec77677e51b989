"""The locks sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario, with parameters that meet its constraints, is judged to pass it."""

import pytest

from tests.locks.lab_runs import NARRATED, RUNS

# For each run checkpoint, the parameters of a run meeting it (None: the defaults). Where they are
# the narration test's, the run is shared with it.
MEETING = {
    "lost-update-fails": None,
    "lost-update-one-client": {"clients": 1},
    # A longer think time keeps the clients between read and write long enough to overlap.
    "autocommit-fails": {"transaction": False, "think_ms": 20},
    "lease-pause-fails": NARRATED["redis-lease-pause"],
    "fencing-holds": NARRATED["redis-lease-fencing"],
    "redlock-restart-fails": None,
    "zk-expiry-holds": {"clients": 4},
}


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    RUNS.check_sheet(MEETING)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    RUNS.check_checkpoint(request, checkpoint_id, MEETING[checkpoint_id])
