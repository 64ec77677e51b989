"""Presenting a run to a class, over real MariaDB and the Redis channel layer: who may start and
end a presentation, the view frames relayed from the presenter to the followers, the banner's socket.

charlie teaches class A (alice a student); dana, also staff, teaches class B (bob a student)."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.classroom.models import Classroom, Membership, Presentation, SharedRun
from apps.classroom.presenting import ONLY_THE_PRESENTER, end_presentation, start_presentation
from apps.runs.models import Event, Run
from labsite.asgi import application
from tests.conftest import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def school(django_user_model, student_user, other_student, instructor):
    dana = django_user_model.objects.create_user("dana", password="labdemo-dana-pw", is_staff=True)
    a = Classroom.objects.create(name="Class A")
    a.instructors.add(instructor)
    Membership.objects.create(classroom=a, user=student_user)
    b = Classroom.objects.create(name="Class B")
    b.instructors.add(dana)
    Membership.objects.create(classroom=b, user=other_student)
    run = Run.objects.create(
        owner=instructor, lab="diagnostics", scenario="ping", seed=1, status="done", events_count=5
    )
    Event.objects.bulk_create(
        Event(run=run, seq=i, t=float(i), kind="log", actor="prober", label=f"e{i}") for i in range(1, 6)
    )
    return {
        "a": a,
        "b": b,
        "run": run,
        "charlie": instructor,
        "alice": student_user,
        "bob": other_student,
        "dana": dana,
    }


def client_of(user):
    client = Client()
    client.force_login(user)
    return client


def present(user, classroom, run):
    return client_of(user).post(
        f"/api/classes/{classroom.pk}/present/", {"run": run.pk}, content_type="application/json"
    )


async def socket(user, path):
    headers = [(b"origin", b"http://127.0.0.1:8000")]
    if user is not None:
        headers.append((b"cookie", (await sync_to_async(session_cookie)(user)).encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect()
    assert connected
    return comm


def view(k, **extra):
    return {"action": "view", "k": k, "live": False, "playing": False, "rate": 1, "highlight": None, **extra}


# Starting and ending ----------------------------------------------------------------------------


def test_it_lets_an_instructor_present_a_run_and_shares_it_with_the_class(school):
    response = present(school["charlie"], school["a"], school["run"])
    assert response.status_code == 201, response.content
    body = response.json()["presentation"]
    assert body["class"]["id"] == school["a"].pk and body["run"]["id"] == school["run"].pk
    assert body["follow_url"] == f"/runs/{school['run'].pk}/?follow={body['id']}"
    assert SharedRun.objects.filter(classroom=school["a"], run=school["run"]).exists()
    # The student may now open the run they are to follow.
    assert client_of(school["alice"]).get(f"/runs/{school['run'].pk}/").status_code == 200


def test_it_ends_the_live_presentation_when_another_starts(school):
    first = present(school["charlie"], school["a"], school["run"]).json()["presentation"]["id"]
    second = present(school["charlie"], school["a"], school["run"]).json()
    assert second["ended"] == [first]
    live = Presentation.objects.filter(classroom=school["a"], ended_at__isnull=True)
    assert list(live.values_list("pk", flat=True)) == [second["presentation"]["id"]]


def test_it_refuses_present_to_a_student_and_to_another_classes_instructor(school):
    refused = present(school["alice"], school["a"], school["run"])
    assert refused.status_code == 403 and "instructors" in refused.json()["detail"]
    # dana is staff and so sees class A, but does not teach it.
    refused = present(school["dana"], school["a"], school["run"])
    assert refused.status_code == 403
    # bob is not in class A: its id is not even confirmed.
    assert present(school["bob"], school["a"], school["run"]).status_code == 404
    assert not Presentation.objects.exists()


def test_it_answers_400_for_a_bad_or_unseen_run(school):
    bad = client_of(school["charlie"]).post(
        f"/api/classes/{school['a'].pk}/present/", {"run": "many"}, content_type="application/json"
    )
    assert bad.status_code == 400 and "run" in bad.json()
    missing = client_of(school["charlie"]).post(
        f"/api/classes/{school['a'].pk}/present/", {"run": 999999}, content_type="application/json"
    )
    assert missing.status_code == 400 and "no run #999999" in missing.json()["run"][0]


def test_it_lets_only_the_classes_instructors_end_a_presentation(school):
    pid = present(school["charlie"], school["a"], school["run"]).json()["presentation"]["id"]
    assert client_of(school["alice"]).post(f"/api/presentations/{pid}/end/").status_code == 403
    assert client_of(school["bob"]).post(f"/api/presentations/{pid}/end/").status_code == 404
    assert client_of(school["charlie"]).post(f"/api/presentations/{pid}/end/").status_code == 200
    again = client_of(school["charlie"]).post(f"/api/presentations/{pid}/end/")
    assert again.status_code == 400 and "already ended" in again.json()["detail"]


def test_it_needs_the_csrf_token_for_a_browser_session(school):
    client = Client(enforce_csrf_checks=True)
    client.force_login(school["charlie"])
    response = client.post(f"/api/classes/{school['a'].pk}/present/", {"run": school["run"].pk})
    assert response.status_code == 403
    assert not Presentation.objects.exists()


# Following ------------------------------------------------------------------------------------


async def test_it_relays_the_presenters_view_to_every_follower_and_stores_it(school):
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    path = f"/ws/presentations/{presentation.pk}/"
    presenter = await socket(school["charlie"], path)
    hello = await presenter.receive_json_from()
    assert hello["type"] == "presentation" and hello["you"] == "presenter"
    follower = await socket(school["alice"], path)
    hello = await follower.receive_json_from()
    assert hello["you"] == "follower" and hello["presentation"]["view"]["live"] is True
    await presenter.send_json_to(view(3, highlight="node:db1"))
    frame = await follower.receive_json_from(timeout=5)
    assert frame == {
        "type": "view",
        "view": {"k": 3, "live": False, "playing": False, "rate": 1.0, "highlight": "node:db1"},
    }
    stored = await sync_to_async(Presentation.objects.get)(pk=presentation.pk)
    assert stored.view["k"] == 3 and stored.view["highlight"] == "node:db1"
    # The presenter is not sent its own frames back.
    assert await presenter.receive_nothing(timeout=0.3)
    await presenter.disconnect()
    await follower.disconnect()


async def test_it_gives_a_late_follower_the_current_view(school):
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    path = f"/ws/presentations/{presentation.pk}/"
    presenter = await socket(school["charlie"], path)
    await presenter.receive_json_from()
    await presenter.send_json_to(view(2, playing=True, rate=2))
    await presenter.send_json_to(view(4))
    # The frames are stored before they are relayed: wait for the last one to be stored.
    early = await socket(school["alice"], path)
    hello = await early.receive_json_from()
    # Joined after the last frame was relayed, it has it already; else it comes relayed.
    late_k = hello["presentation"]["view"]["k"]
    while late_k != 4:
        frame = await early.receive_json_from(timeout=5)
        late_k = frame["view"]["k"] if frame["type"] == "view" else late_k
    late = await socket(school["alice"], path)
    hello = await late.receive_json_from()
    assert hello["presentation"]["view"]["k"] == 4 and hello["presentation"]["view"]["playing"] is False
    for comm in (presenter, early, late):
        await comm.disconnect()


async def test_it_refuses_a_view_from_anyone_but_the_presenter(school):
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    follower = await socket(school["alice"], f"/ws/presentations/{presentation.pk}/")
    await follower.receive_json_from()
    await follower.send_json_to(view(1))
    frame = await follower.receive_json_from()
    assert frame == {"type": "error", "message": ONLY_THE_PRESENTER}
    stored = await sync_to_async(Presentation.objects.get)(pk=presentation.pk)
    assert stored.view["k"] == 0
    await follower.disconnect()


async def test_it_refuses_a_bad_view_frame_with_the_fields_at_fault(school):
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    presenter = await socket(school["charlie"], f"/ws/presentations/{presentation.pk}/")
    await presenter.receive_json_from()
    await presenter.send_json_to(view(-1, rate=3, live="yes"))
    frame = await presenter.receive_json_from()
    assert frame["type"] == "error" and set(frame["errors"]) == {"k", "rate", "live"}
    await presenter.send_to(text_data="not json")
    assert (await presenter.receive_json_from())["type"] == "error"
    await presenter.disconnect()


async def test_it_refuses_a_member_of_another_class_with_an_error_frame(school):
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    outsider = await socket(school["bob"], f"/ws/presentations/{presentation.pk}/")
    frame = await outsider.receive_json_from()
    assert frame["type"] == "error" and "not for a class of yours" in frame["message"]
    assert (await outsider.receive_output())["type"] == "websocket.close"
    anonymous = await socket(None, f"/ws/presentations/{presentation.pk}/")
    assert (await anonymous.receive_json_from())["type"] == "error"
    assert (await anonymous.receive_output())["code"] == 4401


async def test_it_tells_followers_when_the_presentation_ends(school):
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    follower = await socket(school["alice"], f"/ws/presentations/{presentation.pk}/")
    await follower.receive_json_from()
    await sync_to_async(end_presentation)(presentation)
    frame = await follower.receive_json_from(timeout=5)
    assert frame["type"] == "ended" and frame["presentation"]["id"] == presentation.pk
    # Coming back to an ended presentation says so at once.
    again = await socket(school["alice"], f"/ws/presentations/{presentation.pk}/")
    assert (await again.receive_json_from())["type"] == "ended"


# The banner's socket ----------------------------------------------------------------------------


async def test_it_tells_a_classes_members_of_a_presentation_and_no_one_else(school):
    alice = await socket(school["alice"], "/ws/classroom/")
    bob = await socket(school["bob"], "/ws/classroom/")
    assert await alice.receive_json_from() == {"type": "presentations", "presentations": []}
    await bob.receive_json_from()
    presentation, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    started = await alice.receive_json_from(timeout=5)
    assert started["type"] == "started" and started["presentation"]["id"] == presentation.pk
    assert started["presentation"]["presenter"]["name"] == "charlie"
    assert await bob.receive_nothing(timeout=0.5)
    # A page opened now is told of the live presentation on connect.
    later = await socket(school["alice"], "/ws/classroom/")
    hello = await later.receive_json_from()
    assert [p["id"] for p in hello["presentations"]] == [presentation.pk]
    await sync_to_async(end_presentation)(presentation)
    ended = await alice.receive_json_from(timeout=5)
    assert ended == {
        "type": "ended",
        "presentation": {"id": presentation.pk, "class": school["a"].pk, "run": school["run"].pk},
    }
    for comm in (alice, bob, later):
        await comm.disconnect()


# The class page ---------------------------------------------------------------------------------


def test_it_shows_the_live_presentation_on_the_class_page_with_the_way_to_it(school):
    page = f"/classes/{school['a'].pk}/"
    # Nothing is on yet: no card.
    assert 'data-testid="class-presentation"' not in client_of(school["alice"]).get(page).content.decode()

    presentation, _ = start_presentation(school["a"], school["run"], school["charlie"])
    follow = f'href="/runs/{school["run"].pk}/?follow={presentation.pk}"'
    seen = client_of(school["alice"]).get(page).content.decode()
    assert "<strong>charlie</strong> is presenting" in seen
    assert f"#{school['run'].pk}</a> (diagnostics / ping)" in seen
    assert follow in seen
    # The presenter is offered their run back, not a follow link.
    own = client_of(school["charlie"]).get(page).content.decode()
    assert "You are presenting" in own and 'data-testid="presentation-open"' in own and follow not in own
    # Staff who do not belong to the class may open the run, not follow (following is for members).
    staff = client_of(school["dana"]).get(page).content.decode()
    assert 'data-testid="presentation-open"' in staff and follow not in staff
    # A student of another class does not even see the page.
    assert client_of(school["bob"]).get(page).status_code == 404

    end_presentation(presentation)
    after = client_of(school["alice"]).get(page).content.decode()
    assert 'data-testid="class-presentation"' not in after and follow not in after
