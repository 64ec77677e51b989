"""The reaper, run as the beat and a starting worker run it, and the web tier that only reads."""

from datetime import timedelta

import pymysql
import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, connection
from django.utils import timezone

from apps.runs.models import Event, Run
from apps.runs.nodes import SharedNodes, leftover_run_ids
from apps.runs.reaper import reap_stale_runs
from apps.runs.sinks import DatabaseSink
from tests.conftest import lab_node_urls
from tests.runs.test_api import token_client
from tests.runs.test_consumer import viewer

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(minutes=5)
made = []


@pytest.fixture(autouse=True)
def _drop_namespaces():
    """What a test left on the shared nodes goes, whatever its outcome."""
    yield
    while made:
        SharedNodes(made.pop(), **lab_node_urls()).cleanup()


def event(run_id, seq, kind="log", **data):
    return {
        "v": 1,
        "run": run_id,
        "seq": seq,
        "t": float(seq),
        "kind": kind,
        "actor": "prober",
        "label": kind,
        "data": data,
    }


def running_run(owner, events=3, heartbeat_age=LONG_AGO, end=None):
    """A run whose worker recorded `events` events (and `end`, if given) and last beat its heart
    `heartbeat_age` ago, with a namespace of its own on the shared nodes."""
    beat = timezone.now() - heartbeat_age
    run = Run.objects.create(
        owner=owner, lab="diagnostics", scenario="ping", seed=1, status="running", started_at=beat, heartbeat_at=beat
    )
    batch = [event(run.pk, seq) for seq in range(1, events + 1)]
    if end is not None:
        batch.append(event(run.pk, events + 1, "end", **end))
    DatabaseSink(run.pk).write(batch)
    nodes = SharedNodes(run.pk, **lab_node_urls())
    nodes.redis().set(nodes.key("probe"), "1")
    nodes.close()
    made.append(run.pk)
    return run


def stored(run):
    return list(Event.objects.filter(run=run).order_by("seq").values_list("seq", "kind"))


def test_it_fails_a_run_whose_heartbeat_stopped_with_one_end_after_the_last_event(student_user):
    run = running_run(student_user, events=3)
    assert run.pk in leftover_run_ids(**lab_node_urls())

    assert reap_stale_runs() == [run.pk]

    run.refresh_from_db()
    assert (run.status, run.verdict, run.events_count) == ("failed", "unknown", 4)
    assert "no heartbeat" in run.failure_reason
    assert stored(run) == [(1, "log"), (2, "log"), (3, "log"), (4, "end")]
    assert run.pk not in leftover_run_ids(**lab_node_urls())  # its keys are gone with it
    assert reap_stale_runs() == []  # and it is reaped once


def test_a_late_batch_from_a_worker_that_was_only_slow_stores_nothing_after_the_reapers_end(student_user):
    run = running_run(student_user, events=3)
    reap_stale_runs()
    # The worker wakes up and writes what it had numbered next: the reaper's end holds seq 4.
    with pytest.raises(IntegrityError):
        DatabaseSink(run.pk).write([event(run.pk, 4), event(run.pk, 5)])
    assert stored(run) == [(1, "log"), (2, "log"), (3, "log"), (4, "end")]
    assert Run.objects.get(pk=run.pk).status == "failed"


def test_a_worker_frozen_inside_a_write_is_skipped_then_its_batch_lands_before_the_reapers_end(student_user):
    run = running_run(student_user, events=3)
    db = connection.settings_dict
    frozen = pymysql.connect(
        host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"], database=db["NAME"]
    )
    try:
        with frozen.cursor() as cur:  # the worker's bulk insert, its transaction not committed yet
            cur.execute("BEGIN")
            cur.executemany(
                "INSERT INTO runs_event (run_id, seq, t, kind, actor, `to`, label, data) "
                "VALUES (%s, %s, %s, 'log', 'prober', '', 'log', '{}')",
                [(run.pk, 4, 4.0), (run.pk, 5, 5.0)],
            )
        assert reap_stale_runs() == []  # not waited for: the beat goes on to other runs
        frozen.commit()  # the worker thaws
    finally:
        frozen.close()

    assert reap_stale_runs() == [run.pk]
    assert stored(run) == [(1, "log"), (2, "log"), (3, "log"), (4, "log"), (5, "log"), (6, "end")]


def test_a_run_that_recorded_its_own_end_before_its_worker_stalled_keeps_that_end(student_user):
    held = [{"name": "all_nodes_answered", "held": True, "evidence": {}}]
    run = running_run(student_user, events=3, end={"status": "done", "verdict": "pass", "invariants": held})

    assert reap_stale_runs() == [run.pk]

    run.refresh_from_db()
    assert (run.status, run.verdict, run.invariants, run.events_count) == ("done", "pass", held, 4)
    assert [kind for _, kind in stored(run)].count("end") == 1


def test_a_run_whose_worker_still_beats_is_left_alone(student_user):
    run = running_run(student_user, heartbeat_age=timedelta(0))
    assert reap_stale_runs() == []
    assert Run.objects.get(pk=run.pk).status == "running"


def test_reading_a_stale_run_over_the_api_does_not_reap_it(student_user):
    run = running_run(student_user)
    body = token_client(student_user).get(f"/api/runs/{run.pk}/").json()
    assert body["status"] == "running"
    assert stored(run)[-1] == (3, "log")
    assert run.pk in leftover_run_ids(**lab_node_urls())  # web processes never touch the nodes


async def test_a_viewer_of_a_stale_run_is_told_it_looks_stale(student_user):
    run = await sync_to_async(running_run)(student_user)
    comm = await viewer(student_user, run, after=0)
    connected, _ = await comm.connect()
    assert connected
    status = await comm.receive_json_from()
    assert (status["status"], status["stale"]) == ("running", True)
    await comm.disconnect()


async def test_a_viewer_of_a_run_whose_worker_beats_is_not_told_it_looks_stale(student_user):
    run = await sync_to_async(running_run)(student_user, heartbeat_age=timedelta(0))
    comm = await viewer(student_user, run, after=0)
    await comm.connect()
    assert (await comm.receive_json_from())["stale"] is False
    await comm.disconnect()


async def test_a_viewer_of_a_run_the_reaper_fails_gets_its_end_then_the_failed_status(student_user):
    run = await sync_to_async(running_run)(student_user)
    comm = await viewer(student_user, run, after=0)
    await comm.connect()
    assert (await comm.receive_json_from())["status"] == "running"
    assert [e["seq"] for e in (await comm.receive_json_from())["events"]] == [1, 2, 3]

    await sync_to_async(reap_stale_runs)()  # as the beat's task does, in another process

    end = await comm.receive_json_from(timeout=5)
    assert [(e["seq"], e["kind"]) for e in end["events"]] == [(4, "end")]
    status = await comm.receive_json_from(timeout=5)
    assert (status["type"], status["status"], status["events"]) == ("status", "failed", 4)
    await comm.disconnect()
