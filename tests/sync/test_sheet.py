"""The sync sheet parses, and every run checkpoint on it can be passed: a real run of its scenario,
with parameters that meet its constraints, is judged to pass it."""

import pytest

from apps.classroom.sheets import get_sheet
from apps.sync.scenarios import LAB
from tests.sync.lab_runs import recorded

SLUG = "sync/sync"
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


def checkpoint(checkpoint_id):
    return next(c for c in get_sheet(SLUG).checkpoints if c.id == checkpoint_id)


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    sheet = get_sheet(SLUG)
    assert sheet.lab == "sync" and sheet.title
    assert 6 <= len(sheet.checkpoints) <= 10
    assert {c.id for c in sheet.checkpoints if c.kind == "run"} == set(MEETING)
    assert any(c.kind == "question" for c in sheet.checkpoints)
    assert {c.scenario for c in sheet.checkpoints if c.kind == "run"} <= set(LAB.scenarios)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    cp = checkpoint(checkpoint_id)
    supervisor = request.getfixturevalue("supervisor") if LAB.scenarios[cp.scenario].cluster else None
    run = recorded(cp.scenario, MEETING[checkpoint_id], supervisor)
    met, reason = cp.judge("sync", cp.scenario, run.params, run.verdict)
    assert met, reason
