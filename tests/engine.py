"""Running an engine the way the runner does, but with no Django: a list sink and the real nodes."""

import random

from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.runner import run_checks


class ScriptedControl:
    """Commands a test hands to a run, as a user would through the API, in order."""

    def __init__(self, commands=()):
        self.commands = list(commands)
        self.seen_boundaries = 0

    def poll(self):
        out, self.commands = self.commands, []
        return out

    def wait(self, timeout):
        return self.commands.pop(0) if self.commands else None


def run_engine(scenario, node_urls=None, params=None, seed=7, control=None, nodes=None, **limits):
    """Runs the scenario's engine and checkers. The nodes are the shared ones at `node_urls`, or
    what `nodes(run_id, emit)` returns (dedicated nodes, say)."""
    run_id = random.randrange(10**8, 10**9)
    clean, errors = scenario.validate(params or {})
    assert not errors, errors
    sink = ListSink()
    recorder = Recorder(run_id, [sink])
    nodes = nodes(run_id, recorder.emit) if nodes else SharedNodes(run_id, **node_urls)
    ctx = RunContext(run_id=run_id, params=clean, seed=seed, recorder=recorder, nodes=nodes, control=control, **limits)
    ctx.recorded = lambda: (recorder.flush(), (len(sink.events), sink.events[-1]["seq"] if sink.events else 0))[1]
    try:
        result = scenario.engine(ctx)
        checks = run_checks(ctx, scenario, result)
    finally:
        nodes.cleanup()
        recorder.close()
    return ctx, result, checks, sink.events
