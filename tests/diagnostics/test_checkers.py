"""The diagnostics checkers fed real broken data: a node that does not answer at all, and an event
store with a stored event gone."""

import random

import pytest

from apps.diagnostics import checkers
from apps.diagnostics.engine import ping, stream_load
from apps.runs.context import RunContext
from apps.runs.models import Event, Run
from apps.runs.nodes import SharedNodes, cleanup_run
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from apps.runs.sinks import DatabaseSink
from tests.conftest import free_port, lab_node_urls


def test_all_nodes_answered_fails_for_a_node_that_never_answers():
    urls = lab_node_urls()
    run_id = random.randrange(10**8, 10**9)
    # Nothing listens on this port: every probe of "redis" really fails.
    nodes = SharedNodes(run_id, **{**urls, "redis_url": f"redis://127.0.0.1:{free_port()}/0"}, timeout=1.0)
    params, errors = get_scenario("diagnostics", "ping").validate({"rounds": 2})
    assert not errors
    recorder = Recorder(run_id, [sink := ListSink()])
    ctx = RunContext(run_id=run_id, params=params, seed=1, recorder=recorder, nodes=nodes)
    try:
        ping(ctx)
        check = checkers.all_nodes_answered(ctx, {"rounds": 2, "answered": {"redis": 2}})  # the result is not read
    finally:
        nodes.close()
        cleanup_run(run_id, **urls)
        recorder.close()
    assert check.held is False
    assert check.evidence["redis"] == "0 of 2 answered"
    assert check.evidence["summary"] == "2 probes went unanswered (redis answered 0 of 2)"
    assert check.evidence["mariadb"] == check.evidence["zookeeper"] == "2 of 2 answered"
    assert {f["node"] for f in check.evidence["failures"]} == {"redis"}
    failed = [e["data"] for e in sink.events if e["kind"] == "cmd" and not e["data"]["ok"]]
    assert [d["command"] for d in failed] == ["connect", "PING", "PING"]
    assert all(d["node"] == "redis" and d["error"] and d["result"] is None for d in failed)


@pytest.mark.django_db(transaction=True)
def test_every_event_recorded_fails_when_a_stored_event_is_missing():
    params, errors = get_scenario("diagnostics", "stream-load").validate({"events": 50})
    assert not errors
    run = Run.objects.create(lab="diagnostics", scenario="stream-load", params=params, seed=1)
    sink = DatabaseSink(run.pk)
    recorder = Recorder(run.pk, [sink])
    ctx = RunContext(run_id=run.pk, params=params, seed=1, recorder=recorder)
    ctx.recorded = lambda: (recorder.flush(), sink.stored())[1]
    try:
        result = stream_load(ctx)
        assert checkers.every_event_recorded(ctx, result).held is True
        Event.objects.filter(run=run, seq=20).delete()
        check = checkers.every_event_recorded(ctx, result)
    finally:
        recorder.close()
    assert check.held is False
    assert check.evidence == {"stored": 50, "last_seq": 51, "load_events": 50}
