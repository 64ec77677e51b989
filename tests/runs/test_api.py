"""The HTTP API as scripts and the browser use it: auth, validation, authorisation, quota."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.runs.models import Event, Run
from tests.conftest import PASSWORDS

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def token_client(user):
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def start(client, **body):
    body.setdefault("lab", "diagnostics")
    body.setdefault("scenario", "ping")
    return client.post("/api/runs/", body, content_type="application/json")


def test_it_wants_an_account_and_says_so_with_401():
    assert Client().get("/api/labs/").status_code == 401
    assert Client().post("/api/runs/", {}, content_type="application/json").status_code == 401


def test_it_lists_labs_scenarios_and_their_parameter_schemas(student_user):
    labs = token_client(student_user).get("/api/labs/").json()["labs"]
    diagnostics = next(lab for lab in labs if lab["name"] == "diagnostics")
    ping = next(s for s in diagnostics["scenarios"] if s["name"] == "ping")
    assert ping["params"]["rounds"] == {
        "type": "int",
        "default": 5,
        "help": "how many rounds of probes",
        "min": 1,
        "max": 200,
    }
    assert ping["expected"] == "pass"
    assert ping["invariants"][0]["name"] == "all_nodes_answered"


def test_a_script_starts_a_run_with_a_token_and_gets_its_addresses(student_user):
    response = start(token_client(student_user), params={"rounds": 2}, seed=11)
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "status": "queued",
        "url": f"/runs/{body['id']}/",
        "ws": f"/ws/runs/{body['id']}/",
    }
    run = Run.objects.get(pk=body["id"])
    assert (run.owner, run.params, run.seed, run.expected) == (student_user, {"rounds": 2}, 11, "pass")


def test_bad_input_gets_400_with_a_message_per_field(student_user):
    client = token_client(student_user)
    response = start(client, params={"rounds": 0, "colour": "red"})
    assert response.status_code == 400
    assert response.json() == {
        "params": {"rounds": ["must be at least 1"], "colour": ["unknown parameter (known: rounds)"]}
    }
    message = start(client, lab="astrology").json()["lab"][0]
    assert (
        message.startswith("unknown lab 'astrology' (labs: ")
        and "diagnostics, " in message
        and "transactions" in message
    )
    assert "unknown scenario 'pong'" in start(client, scenario="pong").json()["scenario"][0]
    assert "seed" in start(client, seed="soon").json()
    response = client.post("/api/runs/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()
    assert Run.objects.count() == 0


def test_the_browser_session_needs_a_csrf_token(student_user):
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORDS["alice"])
    response = client.post("/api/runs/", {"lab": "diagnostics", "scenario": "ping"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get("/")  # any page sets the cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/runs/",
        {"lab": "diagnostics", "scenario": "ping"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201


def test_a_student_sees_only_their_own_runs_and_staff_see_all(student_user, other_student, instructor):
    run_id = start(token_client(student_user)).json()["id"]
    assert token_client(other_student).get(f"/api/runs/{run_id}/").status_code == 404
    assert token_client(other_student).get(f"/api/runs/{run_id}/events/").status_code == 404
    assert (
        token_client(other_student)
        .post(f"/api/runs/{run_id}/control/", {"action": "stop"}, content_type="application/json")
        .status_code
        == 404
    )
    assert token_client(other_student).get("/api/runs/").json()["runs"] == []
    assert token_client(instructor).get(f"/api/runs/{run_id}/").json()["owner"] == "alice"
    assert [r["id"] for r in token_client(instructor).get("/api/runs/").json()["runs"]] == [run_id]
    assert token_client(student_user).get("/api/runs/999999/").status_code == 404


def test_the_fourth_concurrent_run_is_refused_with_429(student_user, settings):
    settings.DISTLAB_RUN_QUOTA = 3
    client = token_client(student_user)
    assert [start(client).status_code for _ in range(3)] == [201, 201, 201]
    response = start(client)
    assert response.status_code == 429
    assert "limit is 3" in response.json()["detail"]
    Run.objects.filter(owner=student_user).update(status=Run.Status.DONE)
    assert start(client).status_code == 201


def test_events_come_in_pages_after_a_seq(student_user):
    client = token_client(student_user)
    run = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="done")
    Event.objects.bulk_create(Event(run=run, seq=i, t=i, kind="log", actor="a", label=f"e{i}") for i in range(1, 8))
    page = client.get(f"/api/runs/{run.pk}/events/?after=2&limit=3").json()
    assert [e["seq"] for e in page["events"]] == [3, 4, 5]
    assert page["next"] == 5 and page["more"] is True
    assert page["events"][0] == {
        "v": 1,
        "run": run.pk,
        "seq": 3,
        "t": 3.0,
        "kind": "log",
        "actor": "a",
        "label": "e3",
        "data": {},
    }
    rest = client.get(f"/api/runs/{run.pk}/events/?after=5").json()
    assert [e["seq"] for e in rest["events"]] == [6, 7] and rest["more"] is False
    bad = client.get(f"/api/runs/{run.pk}/events/?after=-1&limit=lots")
    assert bad.status_code == 400
    assert set(bad.json()) == {"after", "limit"}


def test_control_checks_the_action_and_the_runs_state(student_user):
    client = token_client(student_user)
    run_id = start(client).json()["id"]
    url = f"/api/runs/{run_id}/control/"
    assert client.post(url, {"action": "dance"}, content_type="application/json").json() == {
        "action": ['"dance" is not a valid choice.']
    }
    assert "value" in client.post(url, {"action": "speed"}, content_type="application/json").json()
    bad_fault = client.post(
        url, {"action": "fault", "kind": "kill-connections", "target": "zookeeper"}, content_type="application/json"
    )
    assert bad_fault.status_code == 400 and "allowed" in bad_fault.json()["kind"][0]
    assert client.post(url, {"action": "pause"}, content_type="application/json").status_code == 202
    # A queued run is stopped at once; afterwards it takes no more actions.
    stopped = client.post(url, {"action": "stop"}, content_type="application/json")
    assert stopped.status_code == 202 and stopped.json()["status"] == "cancelled"
    assert Run.objects.get(pk=run_id).failure_reason == "stopped by alice before it started"
    assert client.post(url, {"action": "resume"}, content_type="application/json").status_code == 409


def test_pages_need_an_account():
    for path in ("/", "/runs/", "/labs/diagnostics/", "/runs/1/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Client().get("/accounts/login/").status_code == 200


def test_a_student_cannot_open_anothers_run_page(student_user, other_student):
    run = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1)
    assert logged_in(other_student).get(f"/runs/{run.pk}/").status_code == 404
    assert logged_in(student_user).get(f"/runs/{run.pk}/").status_code == 200


def test_home_and_history_show_a_student_only_their_own_runs(student_user, other_student):
    mine = Run.objects.create(
        owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="done", verdict="pass"
    )
    theirs = Run.objects.create(owner=other_student, lab="diagnostics", scenario="stream-load", seed=1)
    client = logged_in(student_user)
    for path in ("/", "/runs/", "/runs/?lab=diagnostics&status=done"):
        page = client.get(path).content.decode()
        assert f'href="/runs/{mine.pk}/"' in page
        assert f'href="/runs/{theirs.pk}/"' not in page
    assert f'href="/runs/{mine.pk}/"' not in client.get("/runs/?status=failed").content.decode()
    lab = client.get("/labs/diagnostics/").content.decode()
    assert "Ping every node" in lab and "Stream load" in lab


def test_the_admin_lists_runs_with_filters_and_shows_events_read_only(instructor, student_user):
    instructor.is_superuser = True
    instructor.save()
    run = Run.objects.create(
        owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="done", verdict="fail"
    )
    event = Event.objects.create(run=run, seq=1, t=0.5, kind="log", actor="prober", label="hello")
    admin = logged_in(instructor)
    listing = admin.get("/admin/runs/run/?status__exact=done&verdict__exact=fail&lab=diagnostics")
    assert listing.status_code == 200 and f"/admin/runs/run/{run.pk}/change/" in listing.content.decode()
    assert admin.get(f"/admin/runs/run/?owner__id__exact={student_user.pk}").status_code == 200
    page = admin.get(f"/admin/runs/event/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin.post(f"/admin/runs/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()
    assert admin.get("/admin/auth/user/").status_code == 200
    assert logged_in(student_user).get("/admin/runs/run/").status_code == 302


def test_a_dedicated_node_scenario_without_local_servers_is_refused_with_what_to_install(student_user, settings):
    settings.DISTLAB_NODE_PATH = "/nonexistent"
    response = start(token_client(student_user), scenario="ping-cluster")
    assert response.status_code == 400
    message = response.json()["scenario"][0]
    assert message.startswith("ping-cluster runs on dedicated nodes:") and "mariadb-server" in message
    assert Run.objects.count() == 0
    # The shared nodes still work.
    assert start(token_client(student_user), scenario="ping").status_code == 201


def test_an_owner_check_refuses_a_run_with_400_before_anything_is_created(student_user, monkeypatch):
    from apps.runs.registry import get_scenario

    seen = []

    def only_staff(owner, params):
        seen.append((owner, params["rounds"]))
        return {} if owner.is_staff else {"rounds": ["only staff may probe"]}

    monkeypatch.setattr(get_scenario("diagnostics", "ping"), "owner_check", only_staff)
    response = start(token_client(student_user), params={"rounds": 2})
    assert response.status_code == 400
    assert response.json()["params"] == {"rounds": ["only staff may probe"]}
    assert seen == [(student_user, 2)]
    assert not Run.objects.filter(owner=student_user).exists()


def test_a_fault_on_a_client_the_run_does_not_have_is_refused(student_user):
    client = token_client(student_user)
    run = client.post(
        "/api/runs/",
        {"lab": "locks", "scenario": "optimistic", "params": {"clients": 2}},
        content_type="application/json",
    ).json()
    url = f"/api/runs/{run['id']}/control/"
    Run.objects.filter(pk=run["id"]).update(status=Run.Status.RUNNING)
    ok = client.post(url, {"action": "fault", "kind": "pause", "target": "c2"}, content_type="application/json")
    assert ok.status_code == 202, ok.json()
    refused = client.post(url, {"action": "fault", "kind": "pause", "target": "c3"}, content_type="application/json")
    assert refused.status_code == 400
    assert "pause on c1/c2" in refused.json()["kind"][0]
