"""The diagnostics sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario, with parameters that meet its constraints, is judged to pass it."""

import pytest

from apps.classroom.sheets import get_sheet
from tests.diagnostics.lab_runs import recorded

SLUG = "diagnostics/diagnostics"
MEETING = {
    "ping-holds": None,
    "ping-long": {"rounds": 10},
    "stream-holds": {"events": 20000},
}


def checkpoint(checkpoint_id):
    return next(c for c in get_sheet(SLUG).checkpoints if c.id == checkpoint_id)


def test_it_parses_the_sheet_into_run_checkpoints_and_a_question():
    sheet = get_sheet(SLUG)
    assert sheet.lab == "diagnostics" and sheet.title
    assert 3 <= len(sheet.checkpoints) <= 4
    assert {c.id for c in sheet.checkpoints if c.kind == "run"} == set(MEETING)
    assert any(c.kind == "question" for c in sheet.checkpoints)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id):
    cp = checkpoint(checkpoint_id)
    run = recorded(cp.scenario, MEETING[checkpoint_id])
    met, reason = cp.judge("diagnostics", cp.scenario, run.params, run.verdict)
    assert met, reason
