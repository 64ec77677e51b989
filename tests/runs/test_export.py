"""Export and import: a run as JSON lines, and back as a read-only run of the importer's."""

import io
import json
import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.runs.launch import create_run
from apps.runs.models import Event, Run
from apps.runs.runner import execute
from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def api(user):
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def finished_run(owner, rounds=2):
    run = execute(create_run(owner, "diagnostics", "ping", {"rounds": rounds}, 5).pk, broadcast=False)
    assert run.status == "done", run.failure_reason
    return run


def export(client, run_id):
    response = client.get(f"/api/runs/{run_id}/export/")
    assert response.status_code == 200, response
    assert response.streaming and response["Content-Type"] == "application/x-ndjson"
    return b"".join(response.streaming_content).decode()


def upload(client, text, name="run.jsonl"):
    file = io.BytesIO(text.encode())
    file.name = name
    return client.post("/api/runs/import/", {"file": file})


def without_run(event):
    return {k: v for k, v in event.items() if k != "run"}


def lab(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "manage.py", "lab", *args],
        cwd=ROOT, env=subprocess_env(), input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_an_exported_run_imports_back_with_equal_events_as_the_importers_own(student_user, other_student):
    run = finished_run(student_user)
    text = export(api(student_user), run.pk)
    lines = [json.loads(line) for line in text.splitlines()]
    header, events = lines[0], lines[1:]
    assert header["format"] == "distlab-run" and header["v"] == 1
    assert {k: header[k] for k in ("run", "lab", "scenario", "params", "seed", "status", "verdict", "expected")} == {
        "run": run.pk, "lab": "diagnostics", "scenario": "ping", "params": {"rounds": 2}, "seed": 5,
        "status": "done", "verdict": "pass", "expected": "pass",
    }  # fmt: skip
    assert header["invariants"] == run.invariants and header["events"] == run.events_count
    assert events == [e.as_dict() for e in Event.objects.filter(run=run).order_by("seq")]

    response = upload(api(other_student), text)
    assert response.status_code == 201, response.content
    copy = Run.objects.get(pk=response.json()["id"])
    assert copy.pk != run.pk and copy.owner == other_student and copy.is_imported
    assert (copy.lab, copy.scenario, copy.params, copy.seed) == (run.lab, run.scenario, run.params, run.seed)
    assert (copy.status, copy.verdict, copy.invariants) == (run.status, run.verdict, run.invariants)
    assert (copy.started_at, copy.finished_at) == (run.started_at, run.finished_at)
    served = api(other_student).get(f"/api/runs/{copy.pk}/events/").json()["events"]
    assert [without_run(e) for e in served] == [without_run(e) for e in events]
    assert {e["run"] for e in served} == {copy.pk}
    detail = api(other_student).get(f"/api/runs/{copy.pk}/").json()
    assert detail["imported"]["run"] == run.pk and detail["keep"] is False


def test_an_imported_run_never_executes_and_takes_no_controls(student_user, settings):
    settings.DISTLAB_RUN_QUOTA = 1
    text = export(api(student_user), finished_run(student_user).pk)
    client = api(student_user)
    copy_id = upload(client, text).json()["id"]
    assert execute(copy_id, broadcast=False) is None  # only a queued run is claimed
    stop = client.post(f"/api/runs/{copy_id}/control/", {"action": "stop"}, content_type="application/json")
    assert stop.status_code == 409
    browser = Client()
    browser.force_login(student_user)
    page = browser.get(f"/runs/{copy_id}/")
    assert page.status_code == 200 and page.context["page"]["can_control"] is False
    # Imports hold no place in the quota of runs going at once.
    started = client.post("/api/runs/", {"lab": "diagnostics", "scenario": "ping"}, content_type="application/json")
    assert started.status_code == 201


def test_a_file_with_a_bad_line_3_is_refused_with_line_3_and_nothing_is_kept(student_user):
    lines = export(api(student_user), finished_run(student_user).pk).splitlines(keepends=True)
    before = (Run.objects.count(), Event.objects.count())
    broken = "".join([*lines[:2], '{"v": 1, "seq": 2, oops\n', *lines[3:]])
    response = upload(api(student_user), broken)
    assert response.status_code == 400
    assert response.json()["file"][0].startswith("line 3: not JSON")
    # A bad last line: every event before it was read (and written) first, and still nothing stays.
    late = "".join([*lines[:-1], lines[-1].replace('"kind":"end"', '"kind":"party"')])
    response = upload(api(student_user), late)
    assert response.status_code == 400
    assert response.json()["file"] == [f"line {len(lines)}: unknown event kind 'party'"]
    assert (Run.objects.count(), Event.objects.count()) == before


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "line 1: the file is empty"),
        ("word\tcount\n", "line 1: not JSON"),
        ('{"name": "not a run"}\n', 'line 1: not a DistLab run export (the header has no "format": "distlab-run")'),
        ('{"format": "distlab-run", "v": 2}\n', "line 1: schema version 2 is not one this DistLab reads (1)"),
        ('{"format": "distlab-run", "v": 1, "lab": "astrology"}\n', "line 1: lab 'astrology' is not installed here"),
    ],
)
def test_a_foreign_file_is_refused_on_its_first_line(student_user, text, message):
    response = upload(api(student_user), text)
    assert response.status_code == 400
    assert response.json()["file"][0].startswith(message)
    assert not Run.objects.exists()


def test_events_of_another_run_or_out_of_order_are_refused(student_user):
    lines = export(api(student_user), finished_run(student_user).pk).splitlines(keepends=True)
    second = json.loads(lines[2])
    for field, value, message in (("run", 999, "an event of run 999"), ("seq", 7, "seq 7 where 2 comes next")):
        forged = "".join([*lines[:2], json.dumps(second | {field: value}) + "\n", *lines[3:]])
        response = upload(api(student_user), forged)
        assert response.status_code == 400 and response.json()["file"][0].startswith(f"line 3: {message}")
    short = "".join(lines[:-1])
    response = upload(api(student_user), short)
    assert response.status_code == 400 and "the file ends after" in response.json()["file"][0]


def test_another_users_run_is_not_exportable(student_user, other_student, instructor):
    run = finished_run(student_user)
    assert api(other_student).get(f"/api/runs/{run.pk}/export/").status_code == 404
    assert Client().get(f"/api/runs/{run.pk}/export/").status_code == 401
    assert export(api(instructor), run.pk).startswith('{"format":"distlab-run"')


def test_a_run_still_going_is_not_exported_yet(student_user):
    run = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="running")
    response = api(student_user).get(f"/api/runs/{run.pk}/export/")
    assert response.status_code == 409 and "when it ends" in response.json()["detail"]


def test_lab_export_and_import_round_trip_on_the_command_line():
    run = finished_run(None)
    out = lab("export", str(run.pk))
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()][1:] == [
        e.as_dict() for e in Event.objects.filter(run=run).order_by("seq")
    ]
    back = lab("import", "-", stdin=out.stdout)
    assert back.returncode == 0, back.stderr
    summary = json.loads(back.stdout)
    copy = Run.objects.get(pk=summary["run"])
    assert copy.is_imported and copy.owner is None and summary["events"] == run.events_count
    lines = out.stdout.splitlines(keepends=True)
    bad = lab("import", "-", stdin="".join([*lines[:2], "not json\n", *lines[3:]]))
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "line 3: not JSON" in bad.stderr
    missing = lab("export", "424242")
    assert missing.returncode == 2 and "no run 424242" in missing.stderr


def test_the_history_page_imports_an_upload_and_says_why_it_refuses_one(student_user):
    text = export(api(student_user), finished_run(student_user).pk)
    browser = Client()
    browser.force_login(student_user)
    file = io.BytesIO(text.encode())
    file.name = "ping.jsonl"
    response = browser.post("/runs/import/", {"file": file})
    copy = Run.objects.filter(imported_from__isnull=False).get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{copy.pk}/"
    bad = io.BytesIO(b'{"format": "distlab-run", "v": 1}\n')
    bad.name = "odd.jsonl"
    refused = browser.post("/runs/import/", {"file": bad})
    assert refused.status_code == 400
    assert "odd.jsonl: line 1: lab None is not installed here" in refused.content.decode()
    listing = browser.get("/runs/").content.decode()
    assert f'href="/api/runs/{copy.pk}/export/"' in listing and 'data-testid="run-import"' in listing
