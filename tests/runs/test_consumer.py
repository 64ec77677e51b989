"""The websocket stream, through the real ASGI application (origin check, session auth)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.runs.models import Event, Run
from apps.runs.sinks import events_message, group_name
from labsite.asgi import application
from tests.conftest import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def cookie_header(user):
    return session_cookie(user).encode()


@sync_to_async
def make_run(owner, events=0, status="running"):
    run = Run.objects.create(
        owner=owner, lab="diagnostics", scenario="ping", seed=1, status=status, events_count=events
    )
    Event.objects.bulk_create(
        Event(run=run, seq=i, t=float(i), kind="log", actor="prober", label=f"e{i}") for i in range(1, events + 1)
    )
    return run


async def viewer(user, run, after=None, origin=b"http://127.0.0.1:8000"):
    path = f"/ws/runs/{run.pk}/" + (f"?after={after}" if after is not None else "")
    headers = [(b"origin", origin)]
    if user is not None:
        headers.append((b"cookie", await cookie_header(user)))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_events(comm, until_seq):
    seqs = []
    while not seqs or seqs[-1] < until_seq:
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == "events":
            seqs.extend(e["seq"] for e in frame["events"])
    return seqs


def live_batch(run, seqs):
    return events_message(
        [
            {"v": 1, "run": run.pk, "seq": s, "t": float(s), "kind": "log", "actor": "p", "label": f"e{s}", "data": {}}
            for s in seqs
        ]
    )


async def test_it_sends_the_status_then_every_stored_event_after_the_given_seq(student_user):
    run = await make_run(student_user, events=30)
    comm = await viewer(student_user, run, after=12)
    connected, _ = await comm.connect()
    assert connected
    status = await comm.receive_json_from()
    assert status["type"] == "status" and status["status"] == "running"
    assert await receive_events(comm, 30) == list(range(13, 31))
    await comm.disconnect()


async def test_a_viewer_that_reconnects_with_after_gets_each_event_exactly_once(student_user):
    run = await make_run(student_user, events=5)
    layer = get_channel_layer()
    first = await viewer(student_user, run, after=0)
    await first.connect()
    await first.receive_json_from()
    got = await receive_events(first, 5)
    # Events 6-8 are recorded (stored, then published) while the viewer is connected...
    await sync_to_async(Event.objects.bulk_create)(
        Event(run=run, seq=s, t=s, kind="log", label=f"e{s}") for s in (6, 7, 8)
    )
    await layer.group_send(group_name(run.pk), live_batch(run, [6, 7, 8]))
    got += await receive_events(first, 8)
    await first.disconnect()
    # ... 9-11 while it is away: stored, and published to nobody.
    await sync_to_async(Event.objects.bulk_create)(
        Event(run=run, seq=s, t=s, kind="log", label=f"e{s}") for s in (9, 10, 11)
    )
    await layer.group_send(group_name(run.pk), live_batch(run, [9, 10, 11]))
    second = await viewer(student_user, run, after=got[-1])
    await second.connect()
    await second.receive_json_from()
    got += await receive_events(second, 11)
    # A batch the viewer already has, delivered late, is not sent again; one that overlaps is trimmed.
    await layer.group_send(group_name(run.pk), live_batch(run, [10, 11]))
    await sync_to_async(Event.objects.create)(run=run, seq=12, t=12, kind="log", label="e12")
    await layer.group_send(group_name(run.pk), live_batch(run, [12]))
    got += await receive_events(second, 12)
    await sync_to_async(Event.objects.create)(run=run, seq=13, t=13, kind="log", label="e13")
    await layer.group_send(group_name(run.pk), live_batch(run, [11, 12, 13]))
    got += await receive_events(second, 13)
    await second.disconnect()
    assert got == list(range(1, 14))


async def test_a_gap_in_the_live_stream_is_filled_from_the_database(student_user):
    run = await make_run(student_user, events=2)
    comm = await viewer(student_user, run, after=0)
    await comm.connect()
    await comm.receive_json_from()
    assert await receive_events(comm, 2) == [1, 2]
    # Batch 3-4 was dropped on the way (a slow viewer's full channel); 5 arrives.
    await sync_to_async(Event.objects.bulk_create)(
        Event(run=run, seq=s, t=s, kind="log", label=f"e{s}") for s in (3, 4, 5)
    )
    await get_channel_layer().group_send(group_name(run.pk), live_batch(run, [5]))
    assert await receive_events(comm, 5) == [3, 4, 5]
    await comm.disconnect()


async def test_anonymous_viewers_are_turned_away(student_user):
    run = await make_run(student_user)
    comm = await viewer(None, run)
    connected, code = await comm.connect()
    assert not connected and code == 4401


async def test_a_student_cannot_watch_anothers_run_but_staff_can(student_user, other_student, instructor):
    run = await make_run(student_user, events=3)
    comm = await viewer(other_student, run)
    connected, code = await comm.connect()
    assert not connected and code == 4404
    staff = await viewer(instructor, run)
    connected, _ = await staff.connect()
    assert connected
    await staff.receive_json_from()
    assert await receive_events(staff, 3) == [1, 2, 3]
    await staff.disconnect()


async def test_a_foreign_origin_is_refused(student_user):
    run = await make_run(student_user)
    comm = await viewer(student_user, run, origin=b"http://evil.example")
    connected, _ = await comm.connect()
    assert not connected


async def test_unknown_actions_and_bad_frames_get_an_error_frame_not_a_crash(student_user):
    run = await make_run(student_user)
    comm = await viewer(student_user, run)
    await comm.connect()
    await comm.receive_json_from()
    await comm.send_to(text_data="not json")
    assert (await comm.receive_json_from())["type"] == "error"
    await comm.send_json_to({"action": "dance"})
    frame = await comm.receive_json_from()
    assert frame["type"] == "error" and "action" in frame["errors"]
    await comm.send_json_to(["pause"])
    assert (await comm.receive_json_from())["type"] == "error"
    await comm.send_json_to({"action": "pause"})
    assert (await comm.receive_json_from()) == {"type": "accepted", "accepted": "pause", "status": "running"}
    await comm.disconnect()


async def test_a_bad_after_gets_an_error_frame(student_user):
    run = await make_run(student_user)
    comm = await viewer(student_user, run, after="x")
    connected, _ = await comm.connect()
    assert connected
    frame = await comm.receive_json_from()
    assert frame["type"] == "error" and "after" in frame["message"]
    await comm.disconnect()


async def test_status_changes_reach_the_viewer(student_user):
    run = await make_run(student_user)
    comm = await viewer(student_user, run)
    await comm.connect()
    await comm.receive_json_from()
    frame = {"type": "status", "run": run.pk, "status": "paused", "step": 4}
    await get_channel_layer().group_send(group_name(run.pk), {"type": "run.status", "frame": frame})
    assert await comm.receive_json_from() == frame
    await comm.disconnect()


async def test_a_viewer_of_a_quiet_run_stays_connected(student_user):
    # The channel layer waits for messages in 5 s blocking pops; a quiet spell longer than that
    # (a paused run, a slow step) must not cut the viewer off.
    run = await make_run(student_user, events=1)
    comm = await viewer(student_user, run, after=0)
    await comm.connect()
    await comm.receive_json_from()
    assert await receive_events(comm, 1) == [1]
    await asyncio.sleep(7)
    await sync_to_async(Event.objects.create)(run=run, seq=2, t=2, kind="log", label="e2")
    await get_channel_layer().group_send(group_name(run.pk), live_batch(run, [2]))
    assert await receive_events(comm, 2) == [2]
    await comm.disconnect()
