"""The node supervisor: named clusters of small local MariaDB, Redis and ZooKeeper processes, each
behind its own TCP proxy, with real faults. Plain Python: no Django (see conf.py for the glue).

    sup = Supervisor(".var/nodes", cap=12)
    cluster = sup.up("run17", mariadb=3, owner_pid=os.getpid(), on_event=ctx.emit)
    conn = pymysql.connect(**cluster.node("db1").mysql_params())      # through db1's proxy
    sup.fault("run17", "db2", "kill", on_event=ctx.emit)              # SIGKILL; "node" event: down
    sup.fault("run17", "db2", "restart")                              # same data, same ports
    sup.fault("run17", "db1", "latency", ms=200)
    sup.down("run17")

Layout under base_dir (nothing is written anywhere else):

    _template/mariadb/        an initialised MariaDB data directory with the `lab` account, copied per node
    <cluster>/cluster.json    the cluster's state (below); written atomically (temp file + rename)
    <cluster>/<node>/         data/, tmp/, server.log/server.out, proxy.json, proxy.log (zoo.cfg, mysqld.sock)
    .locks/<cluster>.lock     flock: one command at a time changes a cluster (CLI and worker alike)
    .locks/supervisor.lock    flock: the cap and the choice of ports, across clusters
    .locks/_template.lock     flock: one build of the MariaDB template at a time
    .sock/                    MariaDB sockets whose path would not fit in the node directory

cluster.json:

    {"version": 1, "name": "run17", "created": 1764150000.0, "boot_id": "…",
     "owner_pid": 4242, "owner_start": 123456,          # null for a cluster the CLI started
     "state": "starting" | "up",
     "nodes": {"db1": {"name": "db1", "kind": "mariadb", "id": "run17-db1", "dir": "…/run17/db1",
                       "state": "up" | "down" | "paused", "port": 24001,   # the server's own port
                       "proxy_port": 24002, "control_port": 24003,         # clients use proxy_port
                       "pid": 5151, "pid_start": 987654, "proxy_pid": 5150, "proxy_start": 987650,
                       "partitioned": false, "latency_ms": 0,
                       "socket": "…/run17/db1/mysqld.sock",               # zookeeper: myid, peer_port, election_port
                       "options": ["--sync-binlog=1"]}}}                   # MariaDB, from up(options=...); absent if none

The cap counts every node of every cluster in base_dir, running or not: a killed node still holds
its place, since a restart brings it back.

Events: with `on_event` (a run's `ctx.emit` fits), fault() reports `fault` (actor "instructor",
to=node, label "kill db1", data {"kind", "cluster", "node", ...what was done}) and then a `node` event
(actor=node, data {"state": "up"|"down"|"paused", "role": "server", "kind", "cluster", "address"})
for each state change; up() and down() report the `node` events.

A pid is only ever signalled while its start time (/proc/<pid>/stat) still matches `pid_start`, so
a recycled pid is never mistaken for a node. Every process runs in its own session
(start_new_session): a terminal's Ctrl-C reaches none of them, and each can be signalled as a group.

Locks are always taken in the order cluster lock, then supervisor lock. An flock dies with its
holder, so a crashed command never leaves a cluster locked.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import procs, proxy
from .servers import KINDS, MARIADB_PASSWORD, MARIADB_USER, NotReady, expire_session

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
ACTIONS = (
    "kill",
    "stop",
    "restart",
    "pause",
    "resume",
    "partition",
    "heal",
    "latency",
    "drop",
    "kill-connections",
    "expire-session",
)
MISSING = (
    "dedicated nodes need local mariadbd/redis-server/ZooKeeper (zookeeper.jar + java); install the Debian "
    "packages mariadb-server redis-server zookeeper, or use a scenario on the shared nodes"
)
ZOOKEEPER_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/zookeeper/zookeeper.jar")
REPO = Path(__file__).resolve().parent.parent.parent
MAX_LATENCY_MS = 60_000

# Children this process started, so their exit is collected (a zombie keeps its pid but is dead).
_children: dict[int, subprocess.Popen] = {}


class ClusterError(Exception):
    """A request the supervisor refuses: a bad name, the cap, no local binaries, an unknown node."""


class NodeFailed(ClusterError):
    """A node process did not do what it was asked (it did not start, or did not answer in time)."""


@dataclass
class Node:
    name: str
    kind: str
    state: str
    port: int
    proxy_port: int
    pid: int | None
    proxy_pid: int | None
    proxy_up: bool
    partitioned: bool
    latency_ms: int
    dir: str

    host = "127.0.0.1"

    @property
    def address(self):
        """Where clients connect: the node's proxy."""
        return f"{self.host}:{self.proxy_port}"

    @property
    def url(self):
        return KINDS[self.kind].url(self.proxy_port)

    def mysql_params(self, direct=False):
        """pymysql.connect() keyword arguments for a MariaDB node, through its proxy unless `direct`."""
        port = self.port if direct else self.proxy_port
        return {
            "host": self.host,
            "port": port,
            "user": MARIADB_USER,
            "password": MARIADB_PASSWORD,
            "ssl_disabled": True,
        }

    def to_dict(self):
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "address": self.address,
            "url": self.url,
            "proxy_port": self.proxy_port,
            "port": self.port,
            "pid": self.pid,
            "proxy_pid": self.proxy_pid,
            "proxy": "up" if self.proxy_up else "down",
            "partitioned": self.partitioned,
            "latency_ms": self.latency_ms,
            "dir": self.dir,
        }


@dataclass
class Cluster:
    name: str
    created: float
    owner_pid: int | None
    dir: str
    nodes: list[Node] = field(default_factory=list)
    ready_s: float | None = None  # how long up() took, when this came from up()

    def node(self, name):
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in cluster {self.name!r} (nodes: {', '.join(self.names)})")

    @property
    def names(self):
        return [n.name for n in self.nodes]

    def of_kind(self, kind):
        return [n for n in self.nodes if n.kind == kind]

    @property
    def zk_hosts(self):
        """A kazoo hosts string for the cluster's ZooKeeper nodes, through their proxies."""
        return ",".join(n.address for n in self.of_kind("zookeeper"))

    def to_dict(self):
        out = {
            "name": self.name,
            "created": self.created,
            "owner_pid": self.owner_pid,
            "dir": self.dir,
            "nodes": [n.to_dict() for n in self.nodes],
        }
        if self.ready_s is not None:
            out["ready_s"] = self.ready_s
        return out


def _reap(pid):
    popen = _children.get(pid)
    if popen is not None and popen.poll() is not None:
        del _children[pid]


def _tail(path, lines=3):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


class Supervisor:
    def __init__(self, base_dir, cap=12, *, path=None, zookeeper_jar=None, start_timeout=30.0):
        """`path` replaces the search path for the server binaries, `zookeeper_jar` the jar's location."""
        self.base_dir = Path(base_dir).absolute()
        self.cap = int(cap)
        default_path = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
        self.path = default_path if path is None else path
        self.zookeeper_jar = zookeeper_jar
        self.start_timeout = start_timeout

    # Binaries ------------------------------------------------------------------------------------
    def _find(self, binary):
        if binary == "zookeeper.jar":
            candidates = (self.zookeeper_jar,) if self.zookeeper_jar else ZOOKEEPER_JARS
            return next((c for c in candidates if c and os.path.isfile(c)), None)
        return shutil.which(binary, path=self.path)

    def require(self, mariadb=0, redis=0, zookeeper=0):
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

    # Files and locks ----------------------------------------------------------------------------
    def _cluster_dir(self, name):
        return self.base_dir / name

    def _state_path(self, name):
        return self._cluster_dir(name) / "cluster.json"

    def _lock(self, name, timeout=60.0):
        return procs.FileLock(
            self.base_dir / ".locks" / f"{name}.lock", timeout, what=f"cluster {name!r}", error=ClusterError
        )

    def _global_lock(self):
        return procs.FileLock(
            self.base_dir / ".locks" / "supervisor.lock", 60.0, what="the node supervisor", error=ClusterError
        )

    def _load(self, name):
        try:
            return json.loads(self._state_path(name).read_text())
        except (OSError, ValueError):
            return None

    def _save(self, record):
        path = self._state_path(record["name"])
        tmp = path.with_name(f"cluster.json.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _names(self):
        if not self.base_dir.is_dir():
            return []
        return sorted(p.name for p in self.base_dir.iterdir() if p.is_dir() and NAME.match(p.name))

    def _check_name(self, name):
        if not isinstance(name, str) or not NAME.match(name):
            raise ClusterError(
                f"bad cluster name {name!r}: start with a-z, then a-z, 0-9 or '-', at most 31 characters"
            )

    def _record(self, name):
        record = self._load(name)
        if record is None:
            raise ClusterError(f"no cluster {name!r} (clusters: {', '.join(self._names()) or 'none'})")
        return record

    # Liveness -----------------------------------------------------------------------------------
    def _same_boot(self, record):
        return record.get("boot_id") == procs.boot_id()

    def _server_alive(self, record, rec):
        _reap(rec.get("pid") or 0)
        return self._same_boot(record) and procs.alive(rec.get("pid"), rec.get("pid_start"))

    def _proxy_alive(self, record, rec):
        _reap(rec.get("proxy_pid") or 0)
        return self._same_boot(record) and procs.alive(rec.get("proxy_pid"), rec.get("proxy_start"))

    def _owner_alive(self, record):
        owner = record.get("owner_pid")
        if owner is None:
            return True
        return self._same_boot(record) and procs.alive(owner, record.get("owner_start"))

    def _refresh(self, record):
        """Makes each node's state say what its process is doing now; returns the nodes that changed."""
        changed = []
        for rec in record["nodes"].values():
            if rec["state"] not in ("up", "paused"):
                continue
            if not self._server_alive(record, rec):
                state = "down"
            elif procs.stopped(rec["pid"]):
                state = "paused"
            else:
                state = "up"
            if state != rec["state"]:
                rec["state"] = state
                if state == "down":
                    rec["pid"] = rec["pid_start"] = None
                changed.append(rec)
        return changed

    def _view(self, record, ready_s=None):
        nodes = [
            Node(
                name=rec["name"],
                kind=rec["kind"],
                state=rec["state"],
                port=rec["port"],
                proxy_port=rec["proxy_port"],
                pid=rec.get("pid"),
                proxy_pid=rec.get("proxy_pid"),
                proxy_up=self._proxy_alive(record, rec),
                partitioned=rec.get("partitioned", False),
                latency_ms=rec.get("latency_ms", 0),
                dir=rec["dir"],
            )
            for rec in record["nodes"].values()
        ]
        return Cluster(
            name=record["name"],
            created=record["created"],
            owner_pid=record.get("owner_pid"),
            dir=str(self._cluster_dir(record["name"])),
            nodes=nodes,
            ready_s=ready_s,
        )

    # Processes ----------------------------------------------------------------------------------
    def _env(self, rec):
        # A small, fixed environment: the node's own temporary directory and home, so nothing it
        # writes lands outside the node directory, and none of the caller's secrets.
        return {
            "PATH": self.path,
            "LANG": "C.UTF-8",
            "HOME": rec["dir"],
            "TMPDIR": str(Path(rec["dir"], "tmp")),
        }

    def _spawn(self, argv, rec, log_name, env):
        with open(Path(rec["dir"], log_name), "ab") as log:
            popen = subprocess.Popen(
                argv,
                cwd=rec["dir"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[popen.pid] = popen
        # 0 never matches a live process: one that exited at once is recorded as gone.
        return popen.pid, procs.start_time(popen.pid) or 0

    def _start_server(self, rec, tools):
        server = KINDS[rec["kind"]](tools, self.base_dir)
        rec["pid"], rec["pid_start"] = self._spawn(server.argv(rec), rec, "server.out", self._env(rec))

    def _start_proxy(self, rec):
        argv = [
            sys.executable,
            "-m",
            "apps.cluster.proxy",
            "--listen-port",
            str(rec["proxy_port"]),
            "--upstream-port",
            str(rec["port"]),
            "--control-port",
            str(rec["control_port"]),
            "--ready-file",
            str(Path(rec["dir"], "proxy.json")),
            "--latency-ms",
            str(rec.get("latency_ms", 0)),
        ]
        if rec.get("partitioned"):
            argv.append("--partitioned")
        with contextlib.suppress(FileNotFoundError):
            Path(rec["dir"], "proxy.json").unlink()
        env = {**self._env(rec), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        rec["proxy_pid"], rec["proxy_start"] = self._spawn(argv, rec, "proxy.log", env)

    def _proxy_ready(self, rec):
        try:
            info = json.loads(Path(rec["dir"], "proxy.json").read_text())
        except (OSError, ValueError):
            return False
        return info.get("pid") == rec["proxy_pid"] and info.get("listen_port") == rec["proxy_port"]

    def _wait_ready(self, record, names, tools, timeout):
        """Waits until every named node answers on its own port and its proxy listens."""
        deadline = time.monotonic() + timeout
        pending = set(names)
        servers = {kind: cls(tools, self.base_dir) for kind, cls in KINDS.items()}
        last = {}
        while pending:
            for name in sorted(pending):
                rec = record["nodes"][name]
                if not self._proxy_alive(record, rec):
                    raise NodeFailed(
                        f"the proxy of {name} exited while starting: {_tail(Path(rec['dir'], 'proxy.log'))}"
                    )
                if not self._server_alive(record, rec):
                    log = Path(rec["dir"], "server.log")
                    if not log.exists():
                        log = Path(rec["dir"], "server.out")
                    raise NodeFailed(f"{name} exited while starting: {_tail(log)}")
                try:
                    servers[rec["kind"]].probe(rec)
                except NotReady as exc:
                    last[name] = str(exc)
                    continue
                if self._proxy_ready(rec):
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                waiting = ", ".join(f"{n} ({last.get(n, 'its proxy')})" for n in sorted(pending))
                raise NodeFailed(f"no answer within {timeout:.0f} s from {waiting}")
            if pending:
                time.sleep(0.03)

    def _stop_processes(self, record, cluster_dir):
        """SIGKILLs every process of the cluster, recorded or not (all first, then waits for each);
        returns the pids stopped. The data goes with them, so there is nothing to stop gracefully."""
        targets = []
        if record and self._same_boot(record):
            for rec in record["nodes"].values():
                targets += [(rec.get("pid"), rec.get("pid_start")), (rec.get("proxy_pid"), rec.get("proxy_start"))]
        targets += [(pid, procs.start_time(pid)) for pid in procs.processes_under(cluster_dir)]
        stopped = []
        for pid, started in targets:
            if pid and pid not in stopped and procs.send(pid, signal.SIGKILL, started):
                stopped.append(pid)
        for pid, started in targets:
            if pid in stopped:
                procs.wait_gone(pid, started, 5.0, reap=_reap)
        return stopped

    def _remove_dir(self, name, record):
        for rec in record["nodes"].values() if record else ():
            sock = rec.get("socket")
            if sock and sock.startswith(str(self.base_dir / ".sock")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sock)
        shutil.rmtree(self._cluster_dir(name), ignore_errors=True)

    def _control(self, rec, request):
        try:
            answer = proxy.control(rec["control_port"], request)
        except (OSError, ValueError) as exc:
            raise NodeFailed(f"the proxy of {rec['name']} does not answer ({exc}); restart the node") from None
        if not answer.get("ok"):
            raise NodeFailed(f"the proxy of {rec['name']} refused: {answer.get('error')}")
        return answer

    # Events ------------------------------------------------------------------------------------
    @staticmethod
    def _node_event(on_event, cluster, rec, state=None):
        if on_event is None:
            return
        state = state or rec["state"]
        on_event(
            "node",
            actor=rec["name"],
            label=f"{rec['name']} {state}",
            data={
                "state": state,
                "role": "server",
                "kind": rec["kind"],
                "cluster": cluster,
                "address": f"127.0.0.1:{rec['proxy_port']}",
            },
        )

    # Clusters ----------------------------------------------------------------------------------
    def up(self, cluster, mariadb=0, redis=0, zookeeper=0, owner_pid=None, on_event=None, options=None) -> Cluster:
        """Starts the named cluster's nodes (db1.., redis1.., zk1..) in parallel and waits until each
        answers through a live proxy. ZooKeeper nodes form one ensemble when there are several.
        `options` adds server settings to every MariaDB node, after the defaults (so they win) and kept
        across restarts: e.g. ["--log-bin=binlog", "--sync-binlog=1"]."""
        self._check_name(cluster)
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
        with self._lock(cluster) as lock:
            with self._global_lock():
                existing = self._load(cluster)
                if existing is not None and existing.get("state") == "up":
                    raise ClusterError(
                        f"cluster {cluster!r} is already up; take it down first (lab cluster down {cluster})"
                    )
                if self._cluster_dir(cluster).exists():
                    # Left half-made by a command that crashed (we hold its lock, so it is gone).
                    self._stop_processes(existing, self._cluster_dir(cluster))
                    self._remove_dir(cluster, existing)
                in_use = self._nodes_in_use()
                if in_use + total > self.cap:
                    raise ClusterError(
                        f"starting {total} more dedicated nodes would exceed the cap of {self.cap} "
                        f"({in_use} running now); take a cluster down first"
                    )
                record = self._new_record(cluster, counts, owner_pid, owner_start)
                for rec in record["nodes"].values():
                    if rec["kind"] == "mariadb" and options:
                        rec["options"] = options
                self._cluster_dir(cluster).mkdir(parents=True)
                self._save(record)
            try:
                for rec in record["nodes"].values():
                    Path(rec["dir"]).mkdir()
                peers = [r for r in record["nodes"].values() if r["kind"] == "zookeeper"]
                for rec in record["nodes"].values():
                    KINDS[rec["kind"]](tools, self.base_dir).prepare(rec, peers)
                    self._start_proxy(rec)
                for rec in record["nodes"].values():
                    self._start_server(rec, tools)
                self._save(record)  # the pids, before the wait: a crash now leaves them reapable
                self._wait_ready(record, list(record["nodes"]), tools, self.start_timeout)
            except BaseException as exc:
                self._stop_processes(record, self._cluster_dir(cluster))
                self._remove_dir(cluster, record)
                lock.unlink()
                if isinstance(exc, (ClusterError, KeyboardInterrupt, SystemExit)):
                    raise
                raise NodeFailed(f"cluster {cluster!r} did not start: {type(exc).__name__}: {exc}") from exc
            for rec in record["nodes"].values():
                rec["state"] = "up"
            record["state"] = "up"
            self._save(record)
        for rec in record["nodes"].values():
            self._node_event(on_event, cluster, rec)
        return self._view(record, ready_s=round(time.monotonic() - began, 3))

    def _new_record(self, cluster, counts, owner_pid, owner_start):
        ensemble = counts["zookeeper"] > 1
        # Server, proxy and proxy control for every node; quorum and election too in an ensemble.
        needed = 3 * sum(counts.values()) + (2 * counts["zookeeper"] if ensemble else 0)
        ports = iter(procs.pick_ports(needed, exclude=self._recorded_ports()))
        nodes = {}
        for kind, count in counts.items():
            prefix = KINDS[kind].prefix
            for i in range(1, count + 1):
                name = f"{prefix}{i}"
                rec = {
                    "name": name,
                    "kind": kind,
                    "id": f"{cluster}-{name}",
                    "dir": str(self._cluster_dir(cluster) / name),
                    "state": "starting",
                    "port": next(ports),
                    "proxy_port": next(ports),
                    "control_port": next(ports),
                    "pid": None,
                    "pid_start": None,
                    "proxy_pid": None,
                    "proxy_start": None,
                    "partitioned": False,
                    "latency_ms": 0,
                }
                if kind == "zookeeper":
                    rec["myid"] = i
                    if ensemble:
                        rec["peer_port"], rec["election_port"] = next(ports), next(ports)
                nodes[name] = rec
        return {
            "version": 1,
            "name": cluster,
            "created": round(time.time(), 3),
            "boot_id": procs.boot_id(),
            "owner_pid": owner_pid,
            "owner_start": owner_start,
            "state": "starting",
            "nodes": nodes,
        }

    def _records(self):
        for name in self._names():
            record = self._load(name)
            if record is not None:
                yield record

    def _nodes_in_use(self):
        return sum(len(r["nodes"]) for r in self._records())

    def _recorded_ports(self):
        ports = set()
        for record in self._records():
            for rec in record["nodes"].values():
                ports.update(rec.get(k) for k in ("port", "proxy_port", "control_port", "peer_port", "election_port"))
        ports.discard(None)
        return ports

    def _ensure_template(self, tools):
        mariadb = KINDS["mariadb"](tools, self.base_dir)
        if mariadb.template_ready():
            return
        with procs.FileLock(
            self.base_dir / ".locks" / "_template.lock", 300.0, what="the MariaDB template", error=ClusterError
        ):
            if mariadb.template_ready():
                return
            build = self.base_dir / "_template"
            (build / "tmp").mkdir(parents=True, exist_ok=True)
            env = {"PATH": self.path, "LANG": "C.UTF-8", "HOME": str(build), "TMPDIR": str(build / "tmp")}
            try:
                mariadb.build_template(env)
            except (subprocess.SubprocessError, OSError) as exc:
                logs = sorted(build.glob("mariadb.build-*/install.log*"))
                raise NodeFailed(
                    f"could not build the MariaDB template: {exc} {_tail(logs[-1]) if logs else ''}"
                ) from exc

    def status(self, cluster) -> Cluster:
        """The cluster as its processes are now (a node whose process died is "down"). Reads without
        locking: the state file is replaced atomically, and liveness comes from /proc."""
        self._check_name(cluster)
        record = self._record(cluster)
        self._refresh(record)
        return self._view(record)

    def clusters(self) -> list[Cluster]:
        out = []
        for record in self._records():
            self._refresh(record)
            out.append(self._view(record))
        return out

    def down(self, cluster, on_event=None, missing_ok=False) -> dict:
        """Stops every process and proxy of the cluster and removes its directory."""
        self._check_name(cluster)
        with self._lock(cluster) as lock:
            record = self._load(cluster)
            if record is None and not self._cluster_dir(cluster).exists():
                if missing_ok:
                    return {"cluster": cluster, "stopped": []}
                self._record(cluster)  # raises "no cluster"
            if record:
                self._refresh(record)
            was_running = [r for r in record["nodes"].values() if r["state"] in ("up", "paused")] if record else []
            stopped = self._stop_processes(record, self._cluster_dir(cluster))
            self._remove_dir(cluster, record)
            lock.unlink()
        for rec in was_running:
            self._node_event(on_event, cluster, rec, "down")
        return {"cluster": cluster, "stopped": stopped}

    def down_all(self, on_event=None) -> list[str]:
        names = self._names()
        for name in names:
            self.down(name, on_event=on_event, missing_ok=True)
        return names

    def _down_abandoned(self):
        """Takes down clusters whose owner process died (a worker SIGKILLed mid-run)."""
        downed = []
        for record in list(self._records()):
            if not self._owner_alive(record):
                self.down(record["name"], missing_ok=True)
                downed.append(record["name"])
        return downed

    def reap_orphans(self) -> dict:
        """Cleans up after crashes: downs clusters whose owner died or whose up() died half-way, kills
        node processes that no state file accounts for (or that run though their node is recorded
        down), and removes half-made directories. Clusters another command is working on right now
        are left alone. Returns {"clusters": [...], "processes": [pids], "dirs": [...]}."""
        report = {"clusters": [], "processes": [], "dirs": []}
        if not self.base_dir.is_dir():
            return report
        for name in self._names():
            lock = procs.try_lock(self.base_dir / ".locks" / f"{name}.lock")
            if lock is None:
                continue  # busy: a live command holds it (an flock dies with its holder)
            try:
                record = self._load(name)
                cluster_dir = self._cluster_dir(name)
                # Still "starting" with its lock free: the up() that was making it died half-way.
                if record is None or not self._owner_alive(record) or record.get("state") != "up":
                    report["processes"] += self._stop_processes(record, cluster_dir)
                    self._remove_dir(name, record)
                    report["clusters" if record else "dirs"].append(name)
                    lock.unlink()
                    continue
                known = set()
                for rec in record["nodes"].values():
                    if rec["state"] == "down" and self._server_alive(record, rec):
                        procs.kill(rec["pid"], rec["pid_start"], reap=_reap)
                        report["processes"].append(rec["pid"])
                    for key in ("pid", "proxy_pid"):
                        if rec.get(key) and self._same_boot(record):
                            known.add(rec[key])
                for pid in procs.processes_under(cluster_dir):
                    if pid not in known and procs.kill(pid, procs.start_time(pid), reap=_reap):
                        report["processes"].append(pid)
            finally:
                lock.__exit__(None, None, None)
        # Anything else under base_dir: a template build that died, or a process whose cluster
        # directory is already gone.
        template = procs.try_lock(self.base_dir / ".locks" / "_template.lock")
        if template is not None:
            try:
                for leftover in (self.base_dir / "_template").glob("mariadb.*-*"):
                    shutil.rmtree(leftover, ignore_errors=True)
                    report["dirs"].append(str(leftover.relative_to(self.base_dir)))
                for pid in procs.processes_under(self.base_dir / "_template"):
                    if procs.kill(pid, procs.start_time(pid), reap=_reap):
                        report["processes"].append(pid)
            finally:
                template.__exit__(None, None, None)
        # Scanned before the directories are listed: a process found here was started after its
        # cluster directory was made, so a cluster made meanwhile cannot have its processes mistaken.
        found = procs.processes_under(self.base_dir)
        live = set(self._names())
        for pid, path in found.items():
            parts = Path(path).relative_to(self.base_dir).parts
            if parts and parts[0] not in live and parts[0] != "_template":
                if procs.kill(pid, procs.start_time(pid), reap=_reap):
                    report["processes"].append(pid)
        return report

    # Faults ------------------------------------------------------------------------------------
    def fault(self, cluster, node, action, *, on_event=None, actor="instructor", **opts) -> dict:
        """A real fault on one node. Returns what was done; records a `fault` event and, when the
        node's state changes, a `node` event through `on_event(kind, **fields)`."""
        self._check_name(cluster)
        if action not in ACTIONS:
            raise ClusterError(f"unknown fault {action!r} (faults: {', '.join(ACTIONS)})")
        changes = []
        with self._lock(cluster):
            record = self._record(cluster)
            changes += [(r, r["state"]) for r in self._refresh(record)]
            rec = record["nodes"].get(node)
            if rec is None:
                raise ClusterError(f"no node {node!r} in cluster {cluster!r} (nodes: {', '.join(record['nodes'])})")
            before = rec["state"]
            handler = getattr(self, "_fault_" + action.replace("-", "_"))
            try:
                detail = handler(record, rec, **opts)
            finally:
                self._save(record)
            if action == "restart" and before in ("up", "paused"):
                changes.append((rec, "down"))
            if rec["state"] != before or action == "restart":
                changes.append((rec, rec["state"]))
        if on_event is not None:
            label = f"latency {rec['latency_ms']} ms {node}" if action == "latency" else f"{action} {node}"
            data = {"kind": action, "cluster": cluster, "node": node, **detail}
            on_event("fault", actor=actor, to=node, label=label, data=data)
            for changed, state in changes:
                self._node_event(on_event, cluster, changed, state)
        return {"cluster": cluster, "node": node, "action": action, "state": rec["state"], **detail}

    @staticmethod
    def _require_state(rec, *states, doing):
        if rec["state"] not in states:
            raise ClusterError(f"cannot {doing} {rec['name']}: it is {rec['state']}")

    def _fault_kill(self, record, rec):
        self._require_state(rec, "up", "paused", doing="kill")
        pid = rec["pid"]
        procs.kill(pid, rec["pid_start"], reap=_reap)
        rec.update(state="down", pid=None, pid_start=None)
        return {"signal": "SIGKILL", "pid": pid}

    def _fault_stop(self, record, rec):
        self._require_state(rec, "up", "paused", doing="stop")
        pid = rec["pid"]
        how = procs.terminate(pid, rec["pid_start"], timeout=20.0, reap=_reap)
        rec.update(state="down", pid=None, pid_start=None)
        return {"signal": "SIGTERM" if how == "terminated" else "SIGKILL", "pid": pid}

    def _fault_restart(self, record, rec):
        """Stops the node if it runs, then starts it again on the same data directory and ports."""
        old = rec["pid"]
        if rec["state"] in ("up", "paused"):
            procs.terminate(old, rec["pid_start"], timeout=20.0, reap=_reap)
        rec.update(state="down", pid=None, pid_start=None)
        tools = self.require(**{rec["kind"]: 1})
        if not self._proxy_alive(record, rec):
            self._start_proxy(rec)
        self._start_server(rec, tools)
        try:
            self._wait_ready(record, [rec["name"]], tools, self.start_timeout)
        except NodeFailed:
            procs.kill(rec["pid"], rec["pid_start"], reap=_reap)
            rec.update(state="down", pid=None, pid_start=None)
            raise
        rec["state"] = "up"
        return {"pid": rec["pid"], **({"old_pid": old} if old else {})}

    def _fault_pause(self, record, rec):
        self._require_state(rec, "up", doing="pause")
        procs.send(rec["pid"], signal.SIGSTOP, rec["pid_start"])
        deadline = time.monotonic() + 5
        while not procs.stopped(rec["pid"]) and time.monotonic() < deadline:
            time.sleep(0.005)
        rec["state"] = "paused"
        return {"signal": "SIGSTOP", "pid": rec["pid"]}

    def _fault_resume(self, record, rec):
        self._require_state(rec, "paused", doing="resume")
        procs.send(rec["pid"], signal.SIGCONT, rec["pid_start"])
        rec["state"] = "up"
        return {"signal": "SIGCONT", "pid": rec["pid"]}

    def _fault_partition(self, record, rec):
        answer = self._control(rec, {"op": "set", "partitioned": True})
        rec["partitioned"] = True
        return {"partitioned": True, "connections": answer["connections"]}

    def _fault_heal(self, record, rec):
        answer = self._control(rec, {"op": "set", "partitioned": False})
        rec["partitioned"] = False
        return {"partitioned": False, "connections": answer["connections"]}

    def _fault_latency(self, record, rec, ms=None):
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_LATENCY_MS:
            raise ClusterError(f"latency takes ms, a whole number from 0 to {MAX_LATENCY_MS}")
        self._control(rec, {"op": "set", "latency_ms": ms})
        rec["latency_ms"] = ms
        return {"ms": ms}

    def _fault_drop(self, record, rec):
        answer = self._control(rec, {"op": "drop"})
        return {"dropped": answer["dropped"]}

    def _fault_kill_connections(self, record, rec):
        self._require_state(rec, "up", doing="kill the connections of")
        try:
            return KINDS[rec["kind"]]({}, self.base_dir).kill_connections(rec)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None

    def _fault_expire_session(self, record, rec, client_id=None):
        if rec["kind"] != "zookeeper":
            raise ClusterError("expire-session is for ZooKeeper nodes")
        self._require_state(rec, "up", doing="expire a session on")
        if not client_id:
            raise ClusterError("expire-session needs client_id=(session id, password) of the client's session")
        # Straight to the server, not through the proxy: it works while the node is partitioned.
        return expire_session(f"127.0.0.1:{rec['port']}", client_id)
