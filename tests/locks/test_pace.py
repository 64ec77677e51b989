"""Slow enough to watch: a run stepped by hand shows something at every Step, and at the page's
default pace (2 steps/s) each scenario takes between 10 and 120 steps, 5 to 60 s."""

import random
import re
from itertools import pairwise

import pytest

from apps.locks.scenarios import LAB
from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from tests.conftest import lab_node_urls

PAGE_SPEED = 2  # steps per second, the lab form's default


class Stepper:
    """A user who pauses the run at its first step boundary and then presses Step, again and
    again: it notes how many events the run had recorded at each press."""

    def __init__(self):
        self.recorder = None
        self.presses = []
        self.paused = False

    def poll(self):
        if self.paused:
            return []
        self.paused = True
        return [{"action": "pause"}]

    def wait(self, timeout):
        self.presses.append(self.recorder.seq)
        return {"action": "step"}


def run_stepped(name, **params):
    """Runs a shared-node scenario, paused and stepped; the events each press of Step let through."""
    scenario = get_scenario("locks", name)
    clean, errors = scenario.validate(params)
    assert not errors, errors
    run_id = random.randrange(10**8, 10**9)
    sink = ListSink()
    recorder = Recorder(run_id, [sink])
    stepper = Stepper()
    stepper.recorder = recorder
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params=clean, seed=7, recorder=recorder, nodes=nodes, control=stepper)
    try:
        scenario.engine(ctx)
    finally:
        nodes.cleanup()
        recorder.close()
    presses = stepper.presses + [recorder.seq]
    return ctx, [b - a for a, b in pairwise(presses)]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("redis-lease-pause", {"ttl_ms": 200, "pause_ms": 400}),
        ("redis-lease-fencing", {"ttl_ms": 200, "pause_ms": 400}),
        ("zk-herd", {"clients": 3}),
        ("zk-lock", {"clients": 3}),
        ("zk-session-expiry", {}),
        ("zk-rwlock", {}),
    ],
)
def test_every_step_press_shows_something(name, params):
    ctx, per_press = run_stepped(name, **params)
    assert len(per_press) > 5
    assert 0 not in per_press, per_press


SHARED = [s.name for s in LAB.scenarios.values() if not s.cluster]


@pytest.mark.parametrize("name", SHARED)
def test_at_the_page_pace_a_scenario_lasts_between_5_and_60_seconds(name):
    ctx, per_press = run_stepped(name)
    assert 5 * PAGE_SPEED <= ctx.steps <= 60 * PAGE_SPEED


@pytest.mark.parametrize("scenario", LAB.scenarios.values(), ids=lambda s: s.name)
def test_every_scenario_tells_how_long_it_takes_at_the_page_pace(scenario):
    assert 5 <= scenario.duration() <= 60
    assert re.fullmatch(rf"about \d+ s at {PAGE_SPEED} steps/s", scenario.duration_text())
