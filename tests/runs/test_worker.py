"""Runs executed by a real Celery worker process, steered and killed as users and operators would."""

import json
import signal

import pytest
import redis
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.cluster.procs import alive, port_open
from apps.runs.models import Event, Run
from apps.runs.nodes import SharedNodes, leftover_run_ids
from apps.runs.status import looks_stale
from tests.cluster.conftest import recorded_processes
from tests.conftest import lab_node_urls, start_worker, wait_until
from tests.runs.conftest import start_beat

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def api(user):
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def start(client, scenario="ping", **params):
    response = client.post(
        "/api/runs/", {"lab": "diagnostics", "scenario": scenario, "params": params}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def control(client, run_id, **body):
    response = client.post(f"/api/runs/{run_id}/control/", body, content_type="application/json")
    assert response.status_code == 202, response.content


def run_state(client, run_id):
    return client.get(f"/api/runs/{run_id}/").json()


def test_a_worker_runs_ping_to_a_passing_verdict_with_every_event_stored(celery_worker, student_user):
    client = api(student_user)
    run_id = start(client, rounds=2)
    run = wait_until(lambda: (r := run_state(client, run_id))["status"] == "done" and r, 60, "the run to finish")
    assert run["verdict"] == "pass" and run["invariants"][0]["held"] is True
    seqs = list(Event.objects.filter(run_id=run_id).values_list("seq", flat=True))
    assert seqs == list(range(1, run["events"] + 1))
    assert Event.objects.get(run_id=run_id, seq=run["events"]).kind == "end"


def test_pause_step_and_resume_move_the_run_one_boundary_at_a_time(celery_worker, student_user):
    client = api(student_user)
    run_id = start(client, rounds=2)
    control(client, run_id, action="pause")  # queued: the worker applies it at the first boundary
    paused = wait_until(lambda: (r := run_state(client, run_id))["status"] == "paused" and r, 60, "the run to pause")
    assert paused["step"] == 1
    stored = Event.objects.filter(run_id=run_id).count()
    assert stored == paused["events"]
    control(client, run_id, action="step")
    stepped = wait_until(lambda: (r := run_state(client, run_id))["step"] == 2 and r, 30, "one step")
    assert stepped["status"] == "paused"
    assert Event.objects.filter(run_id=run_id).count() > stored  # the first probe happened
    assert not Event.objects.filter(run_id=run_id, kind="end").exists()
    control(client, run_id, action="resume")
    done = wait_until(lambda: (r := run_state(client, run_id))["status"] == "done" and r, 60, "the run to finish")
    assert done["verdict"] == "pass"


def test_stop_cancels_a_running_run_and_still_records_its_end(celery_worker, student_user):
    client = api(student_user)
    run_id = start(client, scenario="stream-load", events=200000, rate=200)
    wait_until(lambda: run_state(client, run_id)["status"] == "running", 60, "the run to start")
    control(client, run_id, action="stop")
    run = wait_until(lambda: (r := run_state(client, run_id))["status"] == "cancelled" and r, 30, "the run to stop")
    assert run["failure_reason"] == "stopped by alice"
    end = Event.objects.filter(run_id=run_id).order_by("-seq").first()
    assert end.kind == "end" and end.data["status"] == "cancelled"


def test_a_worker_killed_mid_run_leaves_the_run_failed_by_the_next_worker_to_start(student_user, tmp_path):
    doomed = start_worker(tmp_path, name="doomed")
    fresh = None
    try:
        client = api(student_user)
        run_id = start(client, scenario="stream-load", events=200000, rate=500)
        wait_until(lambda: run_state(client, run_id)["events"] > 100, 60, "the run to be under way")
        doomed.kill(signal.SIGKILL)  # the whole worker: main process and pool children
        doomed.popen.wait(10)
        wait_until(lambda: looks_stale(Run.objects.get(pk=run_id)), 30, "the heartbeat to be older than the timeout")
        assert run_state(client, run_id)["status"] == "running"  # readers only read
        fresh = start_worker(tmp_path, name="fresh")  # a starting worker reaps what a dead one left
        run = wait_until(lambda: (r := run_state(client, run_id))["status"] == "failed" and r, 30, "the run to fail")
    finally:
        doomed.stop()
        if fresh:
            fresh.stop()
    assert "worker" in run["failure_reason"] and "heartbeat" in run["failure_reason"]
    stored = list(Event.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "kind"))
    assert [s for s, _ in stored] == list(range(1, len(stored) + 1))
    assert stored[-1][1] == "end"
    assert Run.objects.get(pk=run_id).events_count == len(stored)
    assert run_id not in leftover_run_ids(**lab_node_urls())


def test_a_worker_paused_past_the_heartbeat_timeout_cannot_undo_what_the_reaper_did(student_user, tmp_path):
    sleepy = start_worker(tmp_path, name="sleepy")
    beat = None
    try:
        client = api(student_user)
        response = client.post(
            "/api/runs/",
            {"lab": "diagnostics", "scenario": "ping-cluster", "params": {"rounds": 200}, "speed": 4},
            content_type="application/json",
        )
        run_id = response.json()["id"]
        cluster = settings.DISTLAB_NODES_DIR / f"run{run_id}"
        wait_until(
            lambda: (cluster / "cluster.json").exists() and run_state(client, run_id)["events"] > 10, 60, "probes"
        )
        pids, ports = recorded_processes(json.loads((cluster / "cluster.json").read_text()))
        sleepy.kill(signal.SIGSTOP)  # frozen mid-run, as a stalled host would be: alive, silent
        beat = start_beat(tmp_path)
        run = wait_until(lambda: (r := run_state(client, run_id))["status"] == "failed" and r, 60, "the beat to reap")
        wait_until(lambda: not [pid for pid in pids if alive(pid)], 30, "the run's nodes to be taken down")
        sleepy.kill(signal.SIGCONT)
        # The worker carries on where it froze: its next write meets the reaper's end, and it finishes.
        wait_until(lambda: "execute_run" in (log := sleepy.log_path.read_text()) and "succeeded" in log, 60, "its task")
    finally:
        sleepy.kill(signal.SIGCONT)
        sleepy.stop()
        if beat:
            beat.stop()
    assert "heartbeat" in run["failure_reason"]
    final = Run.objects.get(pk=run_id)
    assert (final.status, final.verdict, final.failure_reason) == ("failed", "unknown", run["failure_reason"])
    stored = list(Event.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "kind"))
    assert [s for s, _ in stored] == list(range(1, len(stored) + 1)) and final.events_count == len(stored)
    assert [kind for _, kind in stored].count("end") == 1 and stored[-1][1] == "end"
    assert not [port for port in ports if port_open(port)]
    assert not cluster.exists()


def test_a_starting_worker_removes_what_dead_runs_left_on_the_shared_nodes(student_user, tmp_path):
    dead = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="failed")
    alive = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="running")
    for run in (dead, alive):
        nodes = SharedNodes(run.pk, **lab_node_urls())
        nodes.mariadb(db="bank").close()
        nodes.redis().set(nodes.key("lock"), "held")
        nodes.zk().create("/leader", b"x")
        nodes.close()
    assert {dead.pk, alive.pk} <= leftover_run_ids(**lab_node_urls())
    worker = start_worker(tmp_path, name="fresh")
    try:
        wait_until(lambda: dead.pk not in leftover_run_ids(**lab_node_urls()), 30, "the dead run's leftovers to go")
    finally:
        worker.stop()
    assert alive.pk in leftover_run_ids(**lab_node_urls())  # a run still going keeps its namespace
    assert redis.Redis.from_url(settings.LAB_REDIS_URL).get(f"run{alive.pk}:lock") == b"held"
    SharedNodes(alive.pk, **lab_node_urls()).cleanup()
