"""The MapReduce sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario on real workers, with parameters that meet its constraints, is judged to pass it."""

import pytest

from tests.mapreduce.lab_runs import NARRATED, RUNS, SMALL

# For each run checkpoint, the parameters of a run meeting it, on a small input where the
# checkpoint leaves the size free. Where they are the narration test's, the run is shared with it.
MEETING = {
    "wordcount-one-reducer": {**SMALL, "reduces": 1},
    "index-more-maps": {**SMALL, "maps": 8},
    "crash-half": {**SMALL, "kill_percent": 50},
    "slower-straggler": {"slow_ms_per_record": 2.0},
    "combiner-bytes": NARRATED["no-combiner"],
}


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    RUNS.check_sheet(MEETING)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(mapreduce_workers, checkpoint_id, request):
    RUNS.check_checkpoint(request, checkpoint_id, MEETING[checkpoint_id])
