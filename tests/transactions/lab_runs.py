"""Transactions scenarios run once per set of parameters and kept for the test session: the narration
test and the sheet test judge the same runs, so each run is paid for once."""

import os
from typing import NamedTuple

from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine


class Recorded(NamedTuple):
    params: dict  # clean, as the run stored them
    verdict: str
    events: list


_recorded = {}


def recorded(name, params=None, supervisor=None):
    """The run of scenario `name` with `params`; one on nodes of its own needs the node supervisor."""
    key = (name, tuple(sorted((params or {}).items())))
    if key not in _recorded:
        scenario = get_scenario("transactions", name)
        nodes = None
        if scenario.cluster:
            assert supervisor is not None, f"{name} runs on nodes of its own: pass the supervisor"

            def nodes(run_id, emit):
                return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

        ctx, _result, checks, events = run_engine(scenario, None if nodes else lab_node_urls(), params, nodes=nodes)
        _recorded[key] = Recorded(ctx.params, verdict_of(checks), events)
    return _recorded[key]
