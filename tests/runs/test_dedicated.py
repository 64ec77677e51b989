"""Runs on dedicated nodes: started for the run, faulted for real from the API, and gone afterwards
— also when the worker running them is SIGKILLed."""

import json
import signal

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.cluster.procs import alive, port_open
from apps.runs.models import Event
from tests.cluster.conftest import recorded_processes
from tests.conftest import start_worker, wait_until
from tests.runs.conftest import start_beat

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def api(user):
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def state(client, run_id):
    return client.get(f"/api/runs/{run_id}/").json()


def cluster_file(run_id):
    return settings.DISTLAB_NODES_DIR / f"run{run_id}" / "cluster.json"


def start_ping_cluster(client, rounds, speed):
    body = {"lab": "diagnostics", "scenario": "ping-cluster", "params": {"rounds": rounds}, "speed": speed}
    response = client.post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_killing_a_dedicated_node_fails_its_probes_and_the_checker_says_so(celery_worker, instructor):
    client = api(instructor)
    run_id = start_ping_cluster(client, rounds=6, speed=4)
    wait_until(lambda: Event.objects.filter(run_id=run_id, kind="cmd", label="SELECT 1").exists(), 60, "a first probe")
    recorded = json.loads(cluster_file(run_id).read_text())
    pids, ports = recorded_processes(recorded)
    db1 = recorded["nodes"]["db1"]["pid"]
    response = client.post(
        f"/api/runs/{run_id}/control/",
        {"action": "fault", "kind": "kill", "target": "db1"},
        content_type="application/json",
    )
    assert response.status_code == 202
    wait_until(lambda: not alive(db1), 30, "db1's server process to be killed")
    run = wait_until(lambda: (r := state(client, run_id))["status"] == "done" and r, 90, "the run to finish")

    assert run["verdict"] == "fail" and run["expected"] == "pass"
    failures = run["invariants"][0]["evidence"]["failures"]
    assert failures and {f["node"] for f in failures} == {"db1"}
    fault = Event.objects.get(run_id=run_id, kind="fault")
    assert (fault.to, fault.label, fault.data["kind"]) == ("db1", "kill db1", "kill")
    went_down = Event.objects.filter(run_id=run_id, kind="node", actor="db1", seq__gt=fault.seq).first()
    assert went_down.data["state"] == "down"
    # The run's cluster is gone with it: no process, no bound port, no data.
    assert not cluster_file(run_id).parent.exists()
    assert not [pid for pid in pids if alive(pid)]
    assert not [port for port in ports if port_open(port)]


def test_a_scenario_fault_must_be_one_it_declares(celery_worker, instructor):
    client = api(instructor)
    run_id = start_ping_cluster(client, rounds=1, speed=0)
    response = client.post(
        f"/api/runs/{run_id}/control/",
        {"action": "fault", "kind": "kill", "target": "db9"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "allowed" in response.json()["kind"][0]
    wait_until(lambda: state(client, run_id)["status"] == "done", 60, "the run to finish")


def test_a_worker_killed_mid_run_leaves_no_dedicated_node_behind(student_user, tmp_path):
    worker = start_worker(tmp_path, name="doomed-dedicated")
    beat = None
    try:
        client = api(student_user)
        run_id = start_ping_cluster(client, rounds=200, speed=2)
        wait_until(lambda: cluster_file(run_id).exists() and state(client, run_id)["events"] > 10, 60, "the run")
        pids, ports = recorded_processes(json.loads(cluster_file(run_id).read_text()))
        worker.kill(signal.SIGKILL)
        worker.popen.wait(10)
        beat = start_beat(tmp_path)  # the reaper lives in the beat, never in the API
        run = wait_until(lambda: (r := state(client, run_id))["status"] == "failed" and r, 60, "the run to be failed")
    finally:
        worker.stop()
        if beat:
            beat.stop()
    assert "heartbeat" in run["failure_reason"]
    wait_until(lambda: not [pid for pid in pids if alive(pid)], 30, "the run's node processes to be reaped")
    assert not [port for port in ports if port_open(port)]
    assert not cluster_file(run_id).parent.exists()
