"""The sync sheet parses, and every run checkpoint on it can be passed: a real run of its scenario,
with parameters that meet its constraints, is judged to pass it."""

import pytest

from tests.lab_runs import LabRuns

RUNS = LabRuns("sync")
# For each run checkpoint, the parameters of a run meeting it (None: the defaults, a run the
# narration test shares).
MEETING = {
    "naive-fails": None,
    "duplicates-fail": None,
    "idempotent-load-data": {"writer": "load-data"},
    "offset-first-fails": None,
    "offset-first-no-crash": {"kills": 0},
    "atomic-many-kills": {"kills": 6},
    "parallel-fails": None,
    "keyed-more-workers": {"workers": 4},
}


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    RUNS.check_sheet(MEETING)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    RUNS.check_checkpoint(request, checkpoint_id, MEETING[checkpoint_id])
