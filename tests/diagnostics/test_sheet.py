"""The diagnostics sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario, with parameters that meet its constraints, is judged to pass it."""

import pytest

from tests.lab_runs import LabRuns

RUNS = LabRuns("diagnostics")
# For each run checkpoint, the parameters of a run meeting it (None: the defaults, a run shared
# with the narration test).
MEETING = {
    "ping-holds": None,
    "ping-long": {"rounds": 10},
    "stream-holds": {"events": 20000},
}


def test_it_parses_the_sheet_into_run_checkpoints_and_a_question():
    RUNS.check_sheet(MEETING, checkpoints=(3, 4))


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    RUNS.check_checkpoint(request, checkpoint_id, MEETING[checkpoint_id])
