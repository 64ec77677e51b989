"""Every cache scenario run at its defaults on the real servers: each says what to watch, each of
its captions matches an event of the run, and each checkpoint of the lab sheet is passable by a
run that meets it."""

import os

import pytest

from apps.cache.scenarios import ORDER
from apps.classroom.sheets import get_sheet
from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine

SHEET = get_sheet("cache/cache")


def run(supervisor, name, params=None):
    scenario = get_scenario("cache", name)
    if scenario.cluster:

        def nodes(run_id, emit):
            return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

        ctx, result, checks, events = run_engine(scenario, params=params, nodes=nodes)
    else:
        ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params)
    return ctx, verdict_of(checks), events


@pytest.fixture(scope="module")
def default_runs(supervisor):
    """Each scenario's run at its defaults, made once for the module's tests."""
    made = {}

    def get(name):
        if name not in made:
            made[name] = run(supervisor, name)
        return made[name]

    return get


@pytest.mark.parametrize("name", list(ORDER))
def test_it_says_what_to_watch_and_every_caption_matches_an_event_of_the_run(default_runs, name):
    scenario = get_scenario("cache", name)
    assert scenario.watch.strip(), f"{name} says nothing to watch"
    assert scenario.captions, f"{name} has no captions"
    ctx, verdict, events = default_runs(name)
    assert verdict == scenario.expected
    unmatched = [c.text for c in scenario.captions if not any(c.matches(e) for e in events)]
    assert unmatched == [], f"{name}: captions no event matches"


def test_the_sheet_teaches_the_lab_with_runs_and_questions():
    assert 6 <= len(SHEET.checkpoints) <= 10
    assert SHEET.questions and len(SHEET.runs) >= 6
    assert {c.scenario for c in SHEET.runs} <= set(ORDER)


# The parameters that meet each constrained checkpoint; the others are met at the defaults.
MEETING = {
    "near-cache-breaks": {"flush_on_reconnect": False},
    "sharding-stale-entries": {"delete_moved": False},
}


@pytest.mark.parametrize("checkpoint", [c.id for c in SHEET.runs])
def test_each_run_checkpoint_of_the_sheet_is_passable(supervisor, default_runs, checkpoint):
    point = SHEET.checkpoint(checkpoint)
    params = MEETING.get(checkpoint)
    ctx, verdict, events = run(supervisor, point.scenario, params) if params else default_runs(point.scenario)
    passed, reason = point.judge("cache", point.scenario, ctx.params, verdict)
    assert passed, reason
