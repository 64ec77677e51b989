"""The MapReduce sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario on real workers, with parameters that meet its constraints, is judged to pass it."""

import pytest

from apps.classroom.sheets import get_sheet
from tests.mapreduce.lab_runs import NARRATED, SMALL, recorded

SLUG = "mapreduce/mapreduce"
# For each run checkpoint, the parameters of a run meeting it, on a small input where the
# checkpoint leaves the size free. Where they are the narration test's, the run is shared with it.
MEETING = {
    "wordcount-one-reducer": {**SMALL, "reduces": 1},
    "index-more-maps": {**SMALL, "maps": 8},
    "crash-half": {**SMALL, "kill_percent": 50},
    "slower-straggler": {"slow_ms_per_record": 2.0},
    "combiner-bytes": NARRATED["no-combiner"],
}


def checkpoint(checkpoint_id):
    return next(c for c in get_sheet(SLUG).checkpoints if c.id == checkpoint_id)


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    sheet = get_sheet(SLUG)
    assert sheet.lab == "mapreduce" and sheet.title
    assert 6 <= len(sheet.checkpoints) <= 10
    assert {c.id for c in sheet.checkpoints if c.kind == "run"} == set(MEETING)
    assert any(c.kind == "question" for c in sheet.checkpoints)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(mapreduce_workers, checkpoint_id):
    cp = checkpoint(checkpoint_id)
    run = recorded(cp.scenario, MEETING[checkpoint_id])
    met, reason = cp.judge("mapreduce", cp.scenario, run.params, run.verdict)
    assert met, reason
