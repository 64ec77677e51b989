"""The transactions sheet parses, and every run checkpoint on it can be passed: a real run of its
scenario, with parameters that meet its constraints, is judged to pass it."""

import pytest

from apps.classroom.sheets import get_sheet
from tests.transactions.lab_runs import recorded

SLUG = "transactions/transactions"
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


def checkpoint(checkpoint_id):
    return next(c for c in get_sheet(SLUG).checkpoints if c.id == checkpoint_id)


def test_it_parses_the_sheet_into_run_checkpoints_and_questions():
    sheet = get_sheet(SLUG)
    assert sheet.lab == "transactions" and sheet.title
    assert 6 <= len(sheet.checkpoints) <= 10
    assert {c.id for c in sheet.checkpoints if c.kind == "run"} == set(MEETING)
    assert len([c for c in sheet.checkpoints if c.kind == "question"]) >= 1


@pytest.mark.parametrize("checkpoint_id", list(MEETING))
def test_it_passes_each_run_checkpoint_with_a_real_run_that_meets_it(checkpoint_id):
    cp = checkpoint(checkpoint_id)
    run = recorded(cp.scenario, MEETING[checkpoint_id])
    met, reason = cp.judge("transactions", cp.scenario, run.params, run.verdict)
    assert met, reason


def test_it_does_not_pass_the_harmless_crash_with_the_default_mix_of_transfers():
    cp = checkpoint("no-log-harmless")
    run = recorded(cp.scenario)
    met, reason = cp.judge("transactions", cp.scenario, run.params, run.verdict)
    assert not met and "local_percent" in reason and "verdict" in reason
