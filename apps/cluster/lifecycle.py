"""Bringing clusters up and down: the binaries, the node and proxy processes, the wait until each
answers, and the reaping of whatever a crashed command or a dead owner left behind. Plain Python.

A pid is only ever signalled while its start time (/proc/<pid>/stat) still matches the one recorded,
so a recycled pid is never mistaken for a node."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from . import procs
from .model import Cluster, ClusterError, Node, NodeFailed, OnEvent, node_event
from .servers import KINDS, NotReady
from .state import Store, check_name

MISSING = (
    "dedicated nodes need local mariadbd/redis-server/ZooKeeper (zookeeper.jar + java); install the Debian "
    "packages mariadb-server redis-server zookeeper, or use a scenario on the shared nodes"
)
ZOOKEEPER_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/zookeeper/zookeeper.jar")
REPO = Path(__file__).resolve().parent.parent.parent


def tail(path: str | Path, lines: int = 3) -> str:
    """The last lines of a log, on one line, for an error message."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


class Lifecycle:
    def __init__(
        self,
        base_dir: str | Path,
        cap: int = 12,
        *,
        path: str | None = None,
        zookeeper_jar: str | None = None,
        start_timeout: float = 30.0,
    ):
        """`path` replaces the search path for the server binaries, `zookeeper_jar` the jar's location."""
        self.store = Store(base_dir)
        self.base_dir = self.store.base_dir
        self.cap = int(cap)
        default_path = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
        self.path = default_path if path is None else path
        self.zookeeper_jar = zookeeper_jar
        self.start_timeout = start_timeout

    # Binaries -------------------------------------------------------------------------------------
    def _find(self, binary: str) -> str | None:
        if binary == "zookeeper.jar":
            candidates = (self.zookeeper_jar,) if self.zookeeper_jar else ZOOKEEPER_JARS
            return next((c for c in candidates if c and os.path.isfile(c)), None)
        return shutil.which(binary, path=self.path)

    def require(self, mariadb: int = 0, redis: int = 0, zookeeper: int = 0) -> dict[str, str]:
        """The paths of the binaries these nodes need, or ClusterError saying what to install."""
        tools, missing = {}, []
        for kind, count in (("mariadb", mariadb), ("redis", redis), ("zookeeper", zookeeper)):
            if not count:
                continue
            for binary in KINDS[kind].binaries:
                found = self._find(binary)
                if found:
                    tools[binary] = found
                elif binary not in missing:
                    missing.append(binary)
        if missing:
            raise ClusterError(f"{MISSING} (not found here: {', '.join(missing)})")
        return tools

    def _env(self, home: str | Path) -> dict[str, str]:
        # A small, fixed environment: the node's own temporary directory and home, so nothing it
        # writes lands outside the node directory, and none of the caller's secrets.
        return {"PATH": self.path, "LANG": "C.UTF-8", "HOME": str(home), "TMPDIR": str(Path(home, "tmp"))}

    def _ensure_template(self, tools: dict[str, str]) -> None:
        mariadb = KINDS["mariadb"](tools, self.base_dir)
        if mariadb.template_ready():
            return
        with self.store.template_lock():
            if mariadb.template_ready():
                return
            build = self.base_dir / "_template"
            (build / "tmp").mkdir(parents=True, exist_ok=True)
            try:
                mariadb.build_template(self._env(build))
            except (subprocess.SubprocessError, OSError) as exc:
                logs = sorted(build.glob("mariadb.build-*/install.log*"))
                raise NodeFailed(
                    f"could not build the MariaDB template: {exc} {tail(logs[-1]) if logs else ''}"
                ) from exc

    # Node processes -------------------------------------------------------------------------------
    def start_server(self, node: Node, tools: dict[str, str]) -> None:
        server = KINDS[node.kind](tools, self.base_dir)
        log = Path(node.dir, "server.out")
        node.pid, node.pid_start = procs.spawn(server.argv(node), node.dir, log, self._env(node.dir))

    def start_proxy(self, node: Node) -> None:
        ready = Path(node.dir, "proxy.json")
        argv = [sys.executable, "-m", "apps.cluster.proxy", "--listen-port", str(node.proxy_port)]
        argv += ["--upstream-port", str(node.port), "--control-port", str(node.control_port)]
        argv += ["--ready-file", str(ready), "--latency-ms", str(node.latency_ms)]
        if node.partitioned:
            argv.append("--partitioned")
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()
        env = {**self._env(node.dir), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        node.proxy_pid, node.proxy_start = procs.spawn(argv, node.dir, Path(node.dir, "proxy.log"), env)

    @staticmethod
    def _proxy_ready(node: Node) -> bool:
        try:
            info = json.loads(Path(node.dir, "proxy.json").read_text())
        except (OSError, ValueError):
            return False
        return info.get("pid") == node.proxy_pid and info.get("listen_port") == node.proxy_port

    def wait_ready(self, cluster: Cluster, nodes: list[Node], tools: dict[str, str], timeout: float) -> None:
        """Waits until every one of `nodes` answers on its own port and its proxy listens."""
        deadline = time.monotonic() + timeout
        pending = {node.name: node for node in nodes}
        servers = {kind: cls(tools, self.base_dir) for kind, cls in KINDS.items()}
        last = {}
        while pending:
            for name in sorted(pending):
                node = pending[name]
                if not cluster.proxy_alive(node):
                    raise NodeFailed(f"the proxy of {name} exited while starting: {tail(Path(node.dir, 'proxy.log'))}")
                if not cluster.server_alive(node):
                    log = Path(node.dir, "server.log")
                    if not log.exists():
                        log = Path(node.dir, "server.out")
                    raise NodeFailed(f"{name} exited while starting: {tail(log)}")
                try:
                    servers[node.kind].probe(node)
                except NotReady as exc:
                    last[name] = str(exc)
                    continue
                if self._proxy_ready(node):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                waiting = ", ".join(f"{n} ({last.get(n, 'its proxy')})" for n in sorted(pending))
                raise NodeFailed(f"no answer within {timeout:.0f} s from {waiting}")
            if pending:
                time.sleep(0.03)

    def _stop_processes(self, cluster: Cluster | None, cluster_dir: Path) -> list[int]:
        """SIGKILLs every process of the cluster, recorded or not (all first, then waits for each);
        returns the pids stopped. The data goes with them, so there is nothing to stop gracefully."""
        targets = []
        if cluster and cluster.same_boot():
            for node in cluster.nodes:
                targets += [(node.pid, node.pid_start), (node.proxy_pid, node.proxy_start)]
        targets += [(pid, procs.start_time(pid)) for pid in procs.processes_under(cluster_dir)]
        stopped = []
        for pid, started in targets:
            if pid and pid not in stopped and procs.send(pid, signal.SIGKILL, started):
                stopped.append(pid)
        for pid, started in targets:
            if pid in stopped:
                procs.wait_gone(pid, started, 5.0)
        return stopped

    def _kill_all(self, pids: Iterable[int]) -> list[int]:
        """SIGKILLs each of `pids` that is still the process it was; returns those killed."""
        return [pid for pid in pids if procs.kill(pid, procs.start_time(pid))]

    # Clusters -------------------------------------------------------------------------------------
    def up(
        self,
        cluster: str,
        mariadb: int = 0,
        redis: int = 0,
        zookeeper: int = 0,
        owner_pid: int | None = None,
        on_event: OnEvent | None = None,
        options: list[str] | None = None,
    ) -> Cluster:
        """Starts the named cluster's nodes (db1.., redis1.., zk1..) in parallel and waits until each
        answers through a live proxy. ZooKeeper nodes form one ensemble when there are several.
        `options` adds server settings to every MariaDB node, after the defaults (so they win) and kept
        across restarts: e.g. ["--log-bin=binlog", "--sync-binlog=1"]."""
        check_name(cluster)
        options = list(options or ())
        if not all(isinstance(o, str) and o.startswith("--") for o in options):
            raise ClusterError(f"MariaDB options must be strings like --name=value, not {options!r}")
        counts = {"mariadb": mariadb, "redis": redis, "zookeeper": zookeeper}
        for kind, count in counts.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ClusterError(f"the number of {kind} nodes must be a whole number, 0 or more")
        total = sum(counts.values())
        if total == 0:
            raise ClusterError("a cluster needs at least one node (--mariadb N, --redis N or --zk N)")
        if total > self.cap:
            raise ClusterError(f"{total} nodes is more than the cap of {self.cap} dedicated nodes running at once")
        tools = self.require(**counts)
        owner_start = None
        if owner_pid is not None:
            owner_start = procs.start_time(owner_pid)
            if owner_start is None:
                raise ClusterError(f"the owner process {owner_pid} is not running")
        self._down_abandoned()
        began = time.monotonic()
        if mariadb:
            self._ensure_template(tools)
        cluster_dir = self.store.cluster_dir(cluster)
        with self.store.lock(cluster) as lock:
            with self.store.global_lock():
                existing = self.store.load(cluster)
                if existing is not None and existing.state == "up":
                    raise ClusterError(
                        f"cluster {cluster!r} is already up; take it down first (lab cluster down {cluster})"
                    )
                if cluster_dir.exists():
                    # Left half-made by a command that crashed (we hold its lock, so it is gone).
                    self._stop_processes(existing, cluster_dir)
                    self.store.remove(cluster, existing)
                in_use = self.store.nodes_in_use()
                if in_use + total > self.cap:
                    raise ClusterError(
                        f"starting {total} more dedicated nodes would exceed the cap of {self.cap} "
                        f"({in_use} running now); take a cluster down first"
                    )
                made = self._new_cluster(cluster, counts, owner_pid, owner_start, options)
                cluster_dir.mkdir(parents=True)
                self.store.save(made)
            try:
                for node in made.nodes:
                    Path(node.dir).mkdir()
                peers = made.of_kind("zookeeper")
                for node in made.nodes:
                    KINDS[node.kind](tools, self.base_dir).prepare(node, peers)
                    self.start_proxy(node)
                for node in made.nodes:
                    self.start_server(node, tools)
                self.store.save(made)  # the pids, before the wait: a crash now leaves them reapable
                self.wait_ready(made, made.nodes, tools, self.start_timeout)
            except BaseException as exc:
                self._stop_processes(made, cluster_dir)
                self.store.remove(cluster, made)
                lock.unlink()
                if isinstance(exc, (ClusterError, KeyboardInterrupt, SystemExit)):
                    raise
                raise NodeFailed(f"cluster {cluster!r} did not start: {type(exc).__name__}: {exc}") from exc
            for node in made.nodes:
                node.state = "up"
            made.state = "up"
            self.store.save(made)
        for node in made.nodes:
            node_event(on_event, cluster, node)
        made.refresh()  # for the proxies' liveness; every node has just answered
        made.ready_s = round(time.monotonic() - began, 3)
        return made

    def _new_cluster(
        self, name: str, counts: dict[str, int], owner_pid: int | None, owner_start: int | None, options: list[str]
    ) -> Cluster:
        ensemble = counts["zookeeper"] > 1
        # Server, proxy and proxy control for every node; quorum and election too in an ensemble.
        needed = 3 * sum(counts.values()) + (2 * counts["zookeeper"] if ensemble else 0)
        ports = iter(procs.pick_ports(needed, exclude=self.store.recorded_ports()))
        cluster_dir = self.store.cluster_dir(name)
        nodes = []
        for kind, count in counts.items():
            for i in range(1, count + 1):
                node_name = f"{KINDS[kind].prefix}{i}"
                node = Node(
                    name=node_name,
                    kind=kind,
                    id=f"{name}-{node_name}",
                    dir=str(cluster_dir / node_name),
                    port=next(ports),
                    proxy_port=next(ports),
                    control_port=next(ports),
                )
                if kind == "mariadb":
                    node.options = list(options)
                if kind == "zookeeper":
                    node.myid = i
                    if ensemble:
                        node.peer_port, node.election_port = next(ports), next(ports)
                nodes.append(node)
        return Cluster(
            name=name,
            created=round(time.time(), 3),
            owner_pid=owner_pid,
            owner_start=owner_start,
            boot_id=procs.boot_id(),
            dir=str(cluster_dir),
            nodes=nodes,
        )

    def status(self, cluster: str) -> Cluster:
        """The cluster as its processes are now (a node whose process died is "down"). Reads without
        locking: the state file is replaced atomically, and liveness comes from /proc."""
        check_name(cluster)
        found = self.store.get(cluster)
        found.refresh()
        return found

    def clusters(self) -> list[Cluster]:
        out = []
        for cluster in self.store.clusters():
            cluster.refresh()
            out.append(cluster)
        return out

    def down(self, cluster: str, on_event: OnEvent | None = None, missing_ok: bool = False) -> dict:
        """Stops every process and proxy of the cluster and removes its directory."""
        check_name(cluster)
        cluster_dir = self.store.cluster_dir(cluster)
        with self.store.lock(cluster) as lock:
            found = self.store.load(cluster)
            if found is None and not cluster_dir.exists():
                if missing_ok:
                    return {"cluster": cluster, "stopped": []}
                self.store.get(cluster)  # raises "no cluster"
            if found:
                found.refresh()
            was_running = [n for n in found.nodes if n.state in ("up", "paused")] if found else []
            stopped = self._stop_processes(found, cluster_dir)
            self.store.remove(cluster, found)
            lock.unlink()
        for node in was_running:
            node_event(on_event, cluster, node, "down")
        return {"cluster": cluster, "stopped": stopped}

    def down_all(self, on_event: OnEvent | None = None) -> list[str]:
        names = self.store.names()
        for name in names:
            self.down(name, on_event=on_event, missing_ok=True)
        return names

    def _down_abandoned(self) -> list[str]:
        """Takes down clusters whose owner process died (a worker SIGKILLed mid-run)."""
        downed = []
        for cluster in list(self.store.clusters()):
            if not cluster.owner_alive():
                self.down(cluster.name, missing_ok=True)
                downed.append(cluster.name)
        return downed

    def reap_orphans(self) -> dict:
        """Cleans up after crashes: downs clusters whose owner died or whose up() died half-way, kills
        node processes that no state file accounts for (or that run though their node is recorded
        down), and removes half-made directories. Clusters another command is working on right now
        are left alone. Returns {"clusters": [...], "processes": [pids], "dirs": [...]}."""
        report = {"clusters": [], "processes": [], "dirs": []}
        if not self.base_dir.is_dir():
            return report
        for name in self.store.names():
            lock = self.store.try_lock(name)
            if lock is None:
                continue  # busy: a live command holds it (an flock dies with its holder)
            try:
                cluster = self.store.load(name)
                cluster_dir = self.store.cluster_dir(name)
                # Still "starting" with its lock free: the up() that was making it died half-way.
                if cluster is None or not cluster.owner_alive() or cluster.state != "up":
                    report["processes"] += self._stop_processes(cluster, cluster_dir)
                    self.store.remove(name, cluster)
                    report["clusters" if cluster else "dirs"].append(name)
                    lock.unlink()
                    continue
                known = set()
                for node in cluster.nodes:
                    if node.state == "down" and cluster.server_alive(node):
                        procs.kill(node.pid, node.pid_start)
                        report["processes"].append(node.pid)
                    if cluster.same_boot():
                        known.update(pid for pid in (node.pid, node.proxy_pid) if pid)
                report["processes"] += self._kill_all(set(procs.processes_under(cluster_dir)) - known)
            finally:
                lock.__exit__(None, None, None)
        # Anything else under base_dir: a template build that died, or a process whose cluster
        # directory is already gone.
        template = self.store.try_template_lock()
        if template is not None:
            try:
                for leftover in (self.base_dir / "_template").glob("mariadb.*-*"):
                    shutil.rmtree(leftover, ignore_errors=True)
                    report["dirs"].append(str(leftover.relative_to(self.base_dir)))
                report["processes"] += self._kill_all(procs.processes_under(self.base_dir / "_template"))
            finally:
                template.__exit__(None, None, None)
        # Scanned before the directories are listed: a process found here was started after its
        # cluster directory was made, so a cluster made meanwhile cannot have its processes mistaken.
        found = procs.processes_under(self.base_dir)
        live = set(self.store.names())
        strays = []
        for pid, path in found.items():
            parts = Path(path).relative_to(self.base_dir).parts
            if parts and parts[0] not in live and parts[0] != "_template":
                strays.append(pid)
        report["processes"] += self._kill_all(strays)
        return report
