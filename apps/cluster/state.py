"""Where the supervisor keeps its clusters: one cluster.json per cluster under base_dir, written
atomically, and the flocks that let one command at a time change a cluster. Plain Python.

Locks are always taken in the order cluster lock, then supervisor lock. An flock dies with its
holder, so a crashed command never leaves a cluster locked."""

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from . import procs
from .model import Cluster, ClusterError

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def check_name(name: object) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise ClusterError(f"bad cluster name {name!r}: start with a-z, then a-z, 0-9 or '-', at most 31 characters")


class Store:
    def __init__(self, base_dir: str | Path):
        self.base_dir = Path(base_dir).absolute()

    def cluster_dir(self, name: str) -> Path:
        return self.base_dir / name

    def _state_path(self, name: str) -> Path:
        return self.cluster_dir(name) / "cluster.json"

    # Locks ----------------------------------------------------------------------------------------
    def _lock_path(self, name: str) -> Path:
        return self.base_dir / ".locks" / f"{name}.lock"

    def lock(self, name: str, timeout: float = 60.0) -> procs.FileLock:
        """One command at a time changes a cluster (CLI and worker alike)."""
        return procs.FileLock(self._lock_path(name), timeout, what=f"cluster {name!r}", error=ClusterError)

    def try_lock(self, name: str) -> procs.FileLock | None:
        return procs.try_lock(self._lock_path(name))

    def global_lock(self) -> procs.FileLock:
        """The cap and the choice of ports, across clusters."""
        return procs.FileLock(self._lock_path("supervisor"), 60.0, what="the node supervisor", error=ClusterError)

    def template_lock(self, timeout: float = 300.0) -> procs.FileLock:
        """One build of the MariaDB template at a time."""
        return procs.FileLock(self._lock_path("_template"), timeout, what="the MariaDB template", error=ClusterError)

    def try_template_lock(self) -> procs.FileLock | None:
        return procs.try_lock(self._lock_path("_template"))

    # cluster.json ---------------------------------------------------------------------------------
    def load(self, name: str) -> Cluster | None:
        """The cluster as last saved, or None when there is no readable state file."""
        try:
            record = json.loads(self._state_path(name).read_text())
            return Cluster.from_record(record, str(self.cluster_dir(name)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def get(self, name: str) -> Cluster:
        cluster = self.load(name)
        if cluster is None:
            raise ClusterError(f"no cluster {name!r} (clusters: {', '.join(self.names()) or 'none'})")
        return cluster

    def save(self, cluster: Cluster) -> None:
        """Temp file, fsync, rename: a reader sees the old state or the new one, never half of one."""
        path = self._state_path(cluster.name)
        tmp = path.with_name(f"cluster.json.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(cluster.to_record(), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def names(self) -> list[str]:
        if not self.base_dir.is_dir():
            return []
        return sorted(p.name for p in self.base_dir.iterdir() if p.is_dir() and NAME.match(p.name))

    def clusters(self) -> Iterator[Cluster]:
        for name in self.names():
            cluster = self.load(name)
            if cluster is not None:
                yield cluster

    def nodes_in_use(self) -> int:
        """Every node of every cluster, running or not: a killed node keeps its place for a restart."""
        return sum(len(c.nodes) for c in self.clusters())

    def recorded_ports(self) -> set[int]:
        ports = set()
        for cluster in self.clusters():
            for node in cluster.nodes:
                ports.update((node.port, node.proxy_port, node.control_port, node.peer_port, node.election_port))
        ports.discard(None)
        return ports

    def remove(self, name: str, cluster: Cluster | None) -> None:
        """The cluster's directory, and the MariaDB sockets kept outside it."""
        for node in cluster.nodes if cluster else ():
            if node.socket and node.socket.startswith(str(self.base_dir / ".sock")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(node.socket)
        shutil.rmtree(self.cluster_dir(name), ignore_errors=True)
