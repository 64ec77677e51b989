"""The transactions sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario, with parameters that meet its constraints, is judged to pass it."""

import pytest

from tests.lab_runs import LabRuns

RUNS = LabRuns("transactions")
# For each run checkpoint, the parameters of a run meeting it (None: the defaults, a run shared
# with the narration test).
MEETING = {
    "happy-holds": None,
    "vote-no-holds": None,
    "no-log-fails": None,
    "no-log-harmless": {"local_percent": 100},
    "crash-after-decision": {"crash_point": "after-decision"},
    "threepc-crash-holds": None,
    "threepc-partition-fails": None,
}


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    RUNS.check_sheet(MEETING)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    RUNS.check_checkpoint(request, checkpoint_id, MEETING[checkpoint_id])


def test_it_does_not_pass_the_harmless_crash_with_the_default_mix_of_transfers(request):
    met, reason = RUNS.judge(request, "no-log-harmless")
    assert not met and "local_percent" in reason and "verdict" in reason
