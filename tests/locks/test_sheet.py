"""The locks sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario, with parameters that meet its constraints, is judged to pass it."""

import pytest

from apps.classroom.sheets import get_sheet
from apps.locks.scenarios import LAB
from tests.locks.lab_runs import NARRATED, recorded

SLUG = "locks/locks"
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


def checkpoint(checkpoint_id):
    return next(c for c in get_sheet(SLUG).checkpoints if c.id == checkpoint_id)


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    sheet = get_sheet(SLUG)
    assert sheet.lab == "locks" and sheet.title
    assert 6 <= len(sheet.checkpoints) <= 10
    assert {c.id for c in sheet.checkpoints if c.kind == "run"} == set(MEETING)
    assert any(c.kind == "question" for c in sheet.checkpoints)


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id, request):
    cp = checkpoint(checkpoint_id)
    supervisor = request.getfixturevalue("supervisor") if LAB.scenarios[cp.scenario].cluster else None
    run = recorded(cp.scenario, MEETING[checkpoint_id], supervisor)
    met, reason = cp.judge("locks", cp.scenario, run.params, run.verdict)
    assert met, reason
