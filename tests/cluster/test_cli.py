"""`manage.py lab cluster ...` and `manage.py lab nodes` as an instructor types them: real processes,
the real exit codes and output."""

import json
import os
import subprocess
import sys

import pytest

from apps.cluster import procs
from apps.cluster.supervisor import Supervisor
from tests.conftest import ROOT, subprocess_env

from .conftest import redis_client


@pytest.fixture
def nodes_dir(tmp_path):
    yield tmp_path
    Supervisor(tmp_path).down_all()
    assert procs.processes_under(tmp_path) == {}


def lab(nodes_dir, *args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", "lab", *args],
        cwd=ROOT,
        env=subprocess_env(DISTLAB_NODES_DIR=nodes_dir, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_instructor_brings_a_cluster_up_injects_faults_reads_its_status_and_takes_it_down(nodes_dir):
    up = lab(nodes_dir, "cluster", "up", "demo", "--redis", "1", "--json")
    assert up.returncode == 0, up.stderr
    node = json.loads(up.stdout)["nodes"][0]
    assert (node["name"], node["kind"], node["state"]) == ("redis1", "redis", "up")
    assert redis_client(node["address"]).ping()

    paused = lab(nodes_dir, "cluster", "fault", "demo", "redis1", "pause")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("pause redis1: paused")
    status = json.loads(lab(nodes_dir, "cluster", "status", "demo", "--json").stdout)
    assert status["nodes"][0]["state"] == "paused"

    assert lab(nodes_dir, "cluster", "fault", "demo", "redis1", "resume").returncode == 0
    assert lab(nodes_dir, "cluster", "fault", "demo", "redis1", "latency=5").returncode == 0
    text = lab(nodes_dir, "cluster", "status", "demo").stdout
    assert "redis1" in text and " up " in text and "latency 5 ms" in text and node["address"] in text
    assert redis_client(node["address"]).ping()

    down = lab(nodes_dir, "cluster", "down", "demo")
    assert down.returncode == 0, down.stderr
    assert not procs.alive(node["pid"]) and not procs.alive(node["proxy_pid"])
    gone = lab(nodes_dir, "cluster", "status", "demo")
    assert gone.returncode == 2 and "no cluster 'demo'" in gone.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("cluster", "up", "Demo", "--redis", "1"), "bad cluster name 'Demo'"),
        (("cluster", "up", "demo", "--redis", "40"), "more than the cap of"),
        (("cluster", "up", "demo", "--redis", "-1"), "must be a whole number"),
        (("cluster", "up", "demo"), "at least one node"),
        (("cluster", "fault", "demo", "db1", "explode"), "unknown fault 'explode'"),
        (("cluster", "fault", "demo", "db1", "latency=soon"), "latency takes whole milliseconds"),
        (("cluster", "down"), "give a cluster NAME or --all"),
    ],
)
def test_bad_cluster_requests_exit_2_with_one_line(nodes_dir, args, message):
    out = lab(nodes_dir, *args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    assert not (nodes_dir / "demo").exists()


def test_a_node_that_fails_to_start_exits_1_with_one_line(nodes_dir, tmp_path_factory):
    fake = tmp_path_factory.mktemp("bin")
    (fake / "redis-server").write_text("#!/bin/sh\necho 'Fatal: port in use' >&2\nexit 1\n")
    (fake / "redis-server").chmod(0o755)
    out = lab(nodes_dir, "cluster", "up", "demo", "--redis", "1", PATH=f"{fake}:{os.environ['PATH']}")
    assert out.returncode == 1
    assert (
        len(out.stderr.strip().splitlines()) == 1 and "redis1 exited while starting: Fatal: port in use" in out.stderr
    )
    assert not (nodes_dir / "demo").exists()


def test_lab_nodes_reports_the_shared_nodes_and_their_health(nodes_dir):
    out = lab(nodes_dir, "nodes", "--json")
    assert out.returncode == 0, out.stdout
    probes = {p["name"]: p for p in json.loads(out.stdout)["nodes"]}
    assert {"mariadb", "redis", "zookeeper"} <= set(probes)
    assert all(probes[name]["ok"] and probes[name]["role"] == "lab node" for name in ("mariadb", "redis", "zookeeper"))
