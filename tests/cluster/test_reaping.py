"""No node process outlives its cluster: not after `down`, not after the process that owned the cluster
is SIGKILLed, not when a state file no longer accounts for a process. And the supervisor refuses,
with one clear line, what it cannot do: more nodes than the cap, nodes without local binaries."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from apps.cluster import procs
from apps.cluster.servers import MariaDB
from apps.cluster.supervisor import MISSING, ClusterError, Node, NodeFailed, Supervisor
from tests.conftest import ROOT

from .conftest import recorded_processes

OWNER = """
import json, os, sys, time
from apps.cluster.supervisor import Supervisor
cluster = Supervisor(sys.argv[1]).up("orphaned", mariadb=1, redis=1, owner_pid=os.getpid())
print(json.dumps(cluster.to_dict()), flush=True)
time.sleep(300)
"""


def state_of(supervisor, name):
    return json.loads((supervisor.base_dir / name / "cluster.json").read_text())


def all_gone(pids, ports):
    return not [p for p in pids if procs.alive(p)] and not [p for p in ports if procs.port_open(p)]


def test_down_stops_every_process_and_frees_every_port(supervisor, events):
    supervisor.up("doomed", mariadb=1, redis=1, zookeeper=1)
    supervisor.fault("doomed", "redis1", "pause")  # a stopped process must die too
    supervisor.fault("doomed", "db1", "partition")
    pids, ports = recorded_processes(state_of(supervisor, "doomed"))
    assert len(pids) == 6 and all(procs.alive(p) for p in pids)

    supervisor.down("doomed", on_event=events)

    assert all_gone(pids, ports)
    assert not (supervisor.base_dir / "doomed").exists()
    assert procs.processes_under(supervisor.base_dir) == {}
    assert sorted(events.summary()) == [
        ("node", "db1 down", "down"),
        ("node", "redis1 down", "down"),
        ("node", "zk1 down", "down"),
    ]


def test_reap_takes_down_a_cluster_whose_owner_was_sigkilled(supervisor):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(supervisor.base_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = owner.stdout.readline()
        assert line, "the owner process did not bring its cluster up"
        assert json.loads(line)["owner_pid"] == owner.pid
        pids, ports = recorded_processes(state_of(supervisor, "orphaned"))
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        owner.stdout.close()
    assert all(procs.alive(p) for p in pids)  # the nodes outlive their owner ...

    report = supervisor.reap_orphans()

    assert report["clusters"] == ["orphaned"]  # ... until the reaper finds the owner gone
    assert all_gone(pids, ports)
    assert not (supervisor.base_dir / "orphaned").exists()


def test_reap_kills_processes_the_state_file_no_longer_accounts_for_and_removes_half_made_dirs(supervisor):
    supervisor.up("drift", redis=2)
    state = state_of(supervisor, "drift")
    ghost = state["nodes"]["redis1"]["pid"]
    forgotten = [state["nodes"]["redis2"][k] for k in ("pid", "proxy_pid")]
    # As a command that crashed half-way might leave it: redis1 recorded down although it runs, and
    # redis2 never recorded at all.
    state["nodes"]["redis1"]["state"] = "down"
    del state["nodes"]["redis2"]
    (supervisor.base_dir / "drift" / "cluster.json").write_text(json.dumps(state))
    (supervisor.base_dir / "halfmade" / "db1").mkdir(parents=True)

    report = supervisor.reap_orphans()

    assert sorted(report["processes"]) == sorted([ghost, *forgotten])
    assert report["dirs"] == ["halfmade"] and not (supervisor.base_dir / "halfmade").exists()
    assert not any(procs.alive(p) for p in [ghost, *forgotten])
    assert supervisor.status("drift").node("redis1").state == "down"  # the cluster itself stays
    supervisor.down("drift")


def test_reap_takes_down_a_cluster_left_half_started_by_a_crashed_command(supervisor):
    supervisor.up("stuck", redis=1)
    state = state_of(supervisor, "stuck")
    state["state"] = "starting"  # what a command SIGKILLed in the middle of up() leaves behind
    (supervisor.base_dir / "stuck" / "cluster.json").write_text(json.dumps(state))
    pids, ports = recorded_processes(state)

    assert supervisor.reap_orphans()["clusters"] == ["stuck"]
    assert all_gone(pids, ports)


def test_a_node_that_fails_to_start_takes_its_cluster_down_and_says_why(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "redis-server").write_text("#!/bin/sh\necho 'Fatal: cannot open the append-only file' >&2\nexit 1\n")
    (fake / "redis-server").chmod(0o755)
    sup = Supervisor(tmp_path / "nodes", path=str(fake))
    with pytest.raises(NodeFailed, match="redis1 exited while starting: Fatal: cannot open the append-only file"):
        sup.up("demo", redis=1)
    assert not (tmp_path / "nodes" / "demo").exists()
    assert procs.processes_under(tmp_path / "nodes") == {}


def test_the_cap_refuses_more_dedicated_nodes_than_it_allows(tmp_path):
    sup = Supervisor(tmp_path, cap=2)
    try:
        sup.up("first", redis=2)
        with pytest.raises(ClusterError, match=r"would exceed the cap of 2 \(2 running now\)"):
            sup.up("second", redis=1)
        with pytest.raises(ClusterError, match="3 nodes is more than the cap of 2"):
            sup.up("third", redis=3)
        assert [c.name for c in sup.clusters()] == ["first"]
        sup.down("first")
        assert sup.up("second", redis=1).names == ["redis1"]  # room again once a cluster is down
    finally:
        sup.down_all()


@pytest.mark.parametrize("kind", ["mariadb", "redis", "zookeeper"])
def test_without_local_binaries_it_says_what_to_install(tmp_path, kind):
    (tmp_path / "empty-bin").mkdir()
    sup = Supervisor(tmp_path / "nodes", path=str(tmp_path / "empty-bin"))
    with pytest.raises(ClusterError) as refused:
        sup.up("demo", **{kind: 1})
    message = str(refused.value)
    assert message.startswith(MISSING) and "\n" not in message
    assert {"mariadb": "mariadbd", "redis": "redis-server", "zookeeper": "java"}[kind] in message
    assert not (tmp_path / "nodes" / "demo").exists()


@pytest.mark.parametrize("name", ["Demo", "9lives", "a" * 32, "../etc", "_template", "run 1", ""])
def test_it_refuses_cluster_names_that_are_not_short_lowercase_words(tmp_path, name):
    with pytest.raises(ClusterError, match="bad cluster name"):
        Supervisor(tmp_path).up(name, redis=1)
    assert list(tmp_path.iterdir()) == []


def test_a_mariadb_socket_path_too_long_for_unix_sockets_falls_back_to_a_short_one(tmp_path):
    base = tmp_path / ("b" * (80 - len(str(tmp_path))))
    node = Node(
        name="db1",
        kind="mariadb",
        id="a-cluster-with-a-long-name-0001-db1",
        dir=str(base / "a-cluster-with-a-long-name-0001" / "db1"),
        port=0,
        proxy_port=0,
        control_port=0,
    )
    assert MariaDB({}, base).socket_path(node).startswith(str(base / ".sock") + "/")
    deeper = tmp_path / ("d" * 120)
    node.dir = str(deeper / "demo" / "db1")
    assert MariaDB({}, deeper).socket_path(node) == "mysqld.sock"  # relative to its data directory


def test_a_mariadb_node_starts_even_where_no_socket_path_would_fit(tmp_path):
    sup = Supervisor(tmp_path / ("deep-" * 24))
    try:
        db1 = sup.up("demo", mariadb=1).node("db1")
        assert len(str(Path(db1.dir) / "mysqld.sock")) > 107
        conn = pymysql.connect(**db1.mysql_params(), connect_timeout=5)
        with conn.cursor() as cur:
            cur.execute("SELECT @@socket")
            assert cur.fetchone() == ("mysqld.sock",)
        conn.close()
    finally:
        sup.down_all()
