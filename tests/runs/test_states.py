"""Every state of a run is told with its reason: a queued run its place in the queue, a stopped
or failed one why, a running one whose worker went quiet that it looks stale; and a fault a user
injected is credited to that user in the run's events."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from apps.runs.models import Run
from apps.runs.registry import get_scenario
from apps.runs.serializers import ControlSerializer
from apps.runs.status import status_frame
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine
from tests.runs.test_consumer import viewer

pytestmark = pytest.mark.django_db(transaction=True)


def ping_run(owner, status="queued", **fields):
    return Run.objects.create(owner=owner, lab="diagnostics", scenario="ping", seed=1, status=status, **fields)


async def next_status(comm, timeout=15):
    """The next status frame the viewer gets (events frames in between are skipped)."""
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        if frame["type"] == "status":
            return frame


def test_it_tells_a_queued_run_how_many_runs_are_ahead_of_it_and_what_holds_the_workers(student_user):
    ping_run(student_user, status="running")
    ping_run(student_user, status="done")
    first, second, third = (ping_run(student_user) for _ in range(3))
    assert status_frame(first)["queue"] == {"ahead": 0, "running": 1}
    assert status_frame(third)["queue"] == {"ahead": 2, "running": 1}
    second.status = "cancelled"
    second.save()
    assert status_frame(third)["queue"]["ahead"] == 1
    assert "queue" not in status_frame(second)


def test_a_run_stopped_while_queued_keeps_its_reason_in_the_api_and_the_status_frame(student_user):
    run = ping_run(student_user)
    client = APIClient()
    client.force_authenticate(student_user)
    response = client.post(f"/api/runs/{run.pk}/control/", {"action": "stop"}, format="json")
    assert response.status_code == 202
    run.refresh_from_db()
    frame = status_frame(run)
    assert (frame["status"], frame["events"]) == ("cancelled", 0)
    assert frame["failure_reason"].startswith("stopped by alice")
    assert client.get(f"/api/runs/{run.pk}/").json()["failure_reason"] == frame["failure_reason"]


async def test_a_viewer_of_a_queued_run_is_told_when_a_run_ahead_of_it_starts(student_user):
    ahead = await sync_to_async(ping_run)(student_user)
    run = await sync_to_async(ping_run)(student_user)
    comm = await viewer(student_user, run, after=0)
    await comm.connect()
    assert (await next_status(comm))["queue"] == {"ahead": 1, "running": 0}

    ahead.status = "running"
    await sync_to_async(ahead.save)()  # as a worker claiming it does, with nothing sent to this run

    assert (await next_status(comm))["queue"] == {"ahead": 0, "running": 1}
    await comm.disconnect()


async def test_a_viewer_is_told_when_the_runs_worker_stops_beating(student_user):
    run = await sync_to_async(ping_run)(student_user, status="running", heartbeat_at=timezone.now())
    comm = await viewer(student_user, run, after=0)
    await comm.connect()
    assert (await next_status(comm))["stale"] is False

    run.heartbeat_at = timezone.now() - timedelta(minutes=5)
    await sync_to_async(run.save)()  # the worker died: nothing beats any more

    frame = await next_status(comm)
    assert (frame["status"], frame["stale"]) == ("running", True)
    await comm.disconnect()


def test_a_users_fault_is_credited_to_the_user_who_pressed_it(student_user):
    run = ping_run(student_user, status="running")
    serializer = ControlSerializer(
        data={"action": "fault", "kind": "kill-connections", "target": "mariadb"}, context={"run": run}
    )
    assert serializer.is_valid(), serializer.errors
    command = serializer.command(student_user)  # what the API and the websocket hand to the run

    class PressedAtSecondBoundary(ScriptedControl):
        def poll(self):
            self.seen_boundaries += 1
            return [command] if self.seen_boundaries == 2 else []

    scenario = get_scenario("diagnostics", "ping")
    _, _, checks, events = run_engine(scenario, lab_node_urls(), {"rounds": 3}, control=PressedAtSecondBoundary())
    faults = [e for e in events if e["kind"] == "fault"]
    assert [(f["actor"], f["to"], f["data"]["by"]) for f in faults] == [("alice", "mariadb", "alice")]
    assert faults[0]["data"]["connections"]  # a real KILL CONNECTION on the server
    assert checks[0]["held"] is False  # and the checker saw the probe it cost


def test_an_engine_fault_pressed_by_a_user_is_credited_to_them():
    from apps.runs.context import RunContext
    from apps.runs.recorder import ListSink, Recorder

    sink = ListSink()
    press = {"action": "fault", "kind": "crash", "target": "coordinator", "by": "bob"}
    ctx = RunContext(run_id=1, params={}, seed=1, recorder=Recorder(1, [sink]), control=ScriptedControl([press]))
    ctx.on_fault("crash", lambda target, **options: {"at": "next step"})
    ctx.step()
    ctx._recorder.close()
    faults = [(e["actor"], e["label"], e["data"]) for e in sink.events if e["kind"] == "fault"]
    assert faults == [("bob", "crash coordinator", {"kind": "crash", "at": "next step", "by": "bob"})]
