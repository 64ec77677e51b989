"""Nothing crosses a class: a student sees their own runs and the runs shared with their class,
watches those and never steers them; another class's runs and another student's runs are not
there for them at all (404, and a websocket closed with 4404). Staff administer everything.

Two classes: charlie teaches alice, dana teaches bob."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.classroom.models import Classroom, Membership, SharedRun
from apps.runs import control
from apps.runs.api import NOT_YOURS
from apps.runs.models import Event, Run
from labsite.asgi import application
from tests.conftest import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def make_run(owner, status="done", events=3, **fields):
    run = Run.objects.create(
        owner=owner, lab="diagnostics", scenario="ping", seed=1, status=status, events_count=events, **fields
    )
    Event.objects.bulk_create(
        Event(run=run, seq=i, t=float(i), kind="log", actor="prober", label=f"e{i}") for i in range(1, events + 1)
    )
    return run


@pytest.fixture
def world(django_user_model, student_user, other_student, instructor):
    dana = django_user_model.objects.create_user("dana", password="labdemo-dana-pw", is_staff=True)
    class_a = Classroom.objects.create(name="Class A")
    class_a.instructors.add(instructor)
    Membership.objects.create(classroom=class_a, user=student_user)
    class_b = Classroom.objects.create(name="Class B")
    class_b.instructors.add(dana)
    Membership.objects.create(classroom=class_b, user=other_student)
    shown_to_a = make_run(instructor, status="running", kept={}, keep=True)
    shown_to_b = make_run(dana)
    SharedRun.objects.create(classroom=class_a, run=shown_to_a, shared_by=instructor)
    SharedRun.objects.create(classroom=class_b, run=shown_to_b, shared_by=dana)
    return {
        "alice": student_user,
        "bob": other_student,
        "charlie": instructor,
        "dana": dana,
        "class_a": class_a,
        "class_b": class_b,
        "alices_run": make_run(student_user),
        "bobs_run": make_run(other_student),
        "shown_to_a": shown_to_a,
        "shown_to_b": shown_to_b,
    }


# HTTP ------------------------------------------------------------------------------------------


def test_a_student_lists_their_own_runs_and_their_classes_shared_runs_only(world):
    client = logged_in(world["alice"])
    api_ids = {run["id"] for run in client.get("/api/runs/").json()["runs"]}
    assert api_ids == {world["alices_run"].pk, world["shown_to_a"].pk}
    page = client.get("/runs/").content.decode()
    for name in ("alices_run", "shown_to_a"):
        assert f'href="/runs/{world[name].pk}/"' in page
    for name in ("bobs_run", "shown_to_b"):
        assert f'href="/runs/{world[name].pk}/"' not in page
    assert "shared with Class A" in page and "Class B" not in page


@pytest.mark.parametrize("name", ["bobs_run", "shown_to_b"])
def test_a_student_gets_404_for_another_students_run_and_another_classes_shared_run(world, name):
    client = logged_in(world["alice"])
    run = world[name]
    for url in (
        f"/runs/{run.pk}/",
        f"/api/runs/{run.pk}/",
        f"/api/runs/{run.pk}/events/",
        f"/api/runs/{run.pk}/export/",
    ):
        assert client.get(url).status_code == 404, url
    control = client.post(f"/api/runs/{run.pk}/control/", {"action": "pause"}, content_type="application/json")
    assert control.status_code == 404
    assert client.get(f"/runs/compare/?a={world['alices_run'].pk}&b={run.pk}").status_code == 404


def test_a_student_watches_a_run_shared_with_their_class_without_its_controls(world):
    client = logged_in(world["alice"])
    run = world["shown_to_a"]
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200
    assert 'data-testid="controls"' not in page.content.decode()
    assert page.context["page"]["can_control"] is False
    events = client.get(f"/api/runs/{run.pk}/events/").json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3]


def test_a_student_cannot_control_or_drop_a_run_shared_with_them(world):
    client = logged_in(world["alice"])
    run = world["shown_to_a"]
    control.discard(run.pk)
    for action in ({"action": "pause"}, {"action": "stop"}):
        response = client.post(f"/api/runs/{run.pk}/control/", action, content_type="application/json")
        assert response.status_code == 403 and response.json() == {"detail": NOT_YOURS}
    drop = client.post(f"/api/runs/{run.pk}/drop/")
    assert drop.status_code == 403 and drop.json() == {"detail": NOT_YOURS}
    assert control.client().llen(control._key(run.pk)) == 0
    run.refresh_from_db()
    assert run.status == "running"


def test_a_class_page_is_404_to_another_classes_students_and_open_to_staff(world):
    class_b = world["class_b"]
    assert logged_in(world["alice"]).get(f"/classes/{class_b.pk}/").status_code == 404
    assert logged_in(world["bob"]).get(f"/classes/{class_b.pk}/").status_code == 200
    # charlie teaches class A only, but is staff: staff administer every class.
    page = logged_in(world["charlie"]).get(f"/classes/{class_b.pk}/")
    assert page.status_code == 200 and "bob" in page.content.decode()


def test_the_class_page_shows_only_that_classes_shared_runs(world):
    page = logged_in(world["alice"]).get(f"/classes/{world['class_a'].pk}/").content.decode()
    assert f'href="/runs/{world["shown_to_a"].pk}/"' in page
    assert f'href="/runs/{world["shown_to_b"].pk}/"' not in page


# Websocket (the real ASGI application and the Redis channel layer) ---------------------------


@sync_to_async
def cookie_header(user):
    return session_cookie(user).encode()


async def viewer(user, run):
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", await cookie_header(user))]
    return WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)


async def next_frame(comm, kind):
    while True:
        frame = await comm.receive_json_from(timeout=10)
        if frame["type"] == kind:
            return frame


@pytest.mark.parametrize("name", ["bobs_run", "shown_to_b"])
async def test_the_websocket_closes_4404_for_another_students_run_and_another_classes_shared_run(world, name):
    comm = await viewer(world["alice"], world[name])
    connected, code = await comm.connect()
    assert not connected and code == 4404
    await comm.disconnect()


async def test_a_student_watches_a_shared_run_over_the_websocket_but_cannot_steer_it(world):
    run = world["shown_to_a"]
    await sync_to_async(control.discard)(run.pk)
    comm = await viewer(world["alice"], run)
    connected, _ = await comm.connect()
    assert connected
    assert (await next_frame(comm, "status"))["status"] == "running"
    assert [e["seq"] for e in (await next_frame(comm, "events"))["events"]] == [1, 2, 3]
    await comm.send_json_to({"action": "pause"})
    assert await next_frame(comm, "error") == {"type": "error", "message": NOT_YOURS}
    await comm.disconnect()
    assert await sync_to_async(control.client().llen)(control._key(run.pk)) == 0


async def test_a_student_removed_from_the_class_can_no_longer_open_its_shared_run(world):
    await sync_to_async(Membership.objects.filter(user=world["alice"]).delete)()
    comm = await viewer(world["alice"], world["shown_to_a"])
    connected, code = await comm.connect()
    assert not connected and code == 4404
    await comm.disconnect()
