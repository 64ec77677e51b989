"""Fixtures for the dedicated-node tests. Every test runs real MariaDB, Redis, ZooKeeper and proxy
processes; each module's nodes live in their own directory, and whatever a module leaves running is
taken down when it ends, whatever the outcome, then checked: no process may outlive it."""

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class Events:
    """Collects what the supervisor reports through on_event, as a run's recorder would."""

    def __init__(self):
        self.items = []

    def __call__(self, kind, **fields):
        self.items.append({"kind": kind, **fields})

    def summary(self):
        return [(e["kind"], e["label"], e.get("data", {}).get("state")) for e in self.items]


@pytest.fixture
def events():
    return Events()


def redis_client(address, timeout=2.0):
    """A client that reports a fault at once instead of quietly reconnecting and retrying."""
    host, port = address.split(":")
    return redis.Redis(
        host=host,
        port=int(port),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def recorded_processes(cluster_json):
    """Every pid a cluster's state file records (servers and proxies) and every port it names."""
    pids, ports = [], []
    for rec in cluster_json["nodes"].values():
        pids += [p for p in (rec.get("pid"), rec.get("proxy_pid")) if p]
        ports += [rec[k] for k in ("port", "proxy_port", "control_port")]
    return pids, ports
