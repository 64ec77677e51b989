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

The parts: model.py (Cluster and Node, as stored and as returned, and the errors), state.py
(cluster.json and the locks), lifecycle.py (up, down, status, reaping), faults.py (one function a
fault), servers.py (each kind of server), procs.py (pids, signals, ports), proxy.py (the TCP proxy).
"""

from .faults import ACTIONS, MAX_LATENCY_MS, apply
from .lifecycle import MISSING, Lifecycle
from .model import Cluster, ClusterError, Node, NodeFailed, NodeNotUp, OnEvent
from .state import NAME

__all__ = [
    "ACTIONS",
    "MAX_LATENCY_MS",
    "MISSING",
    "NAME",
    "Cluster",
    "ClusterError",
    "Node",
    "NodeFailed",
    "NodeNotUp",
    "Supervisor",
]


class Supervisor(Lifecycle):
    """Clusters of dedicated nodes under one base directory: up(), status(), clusters(), down(),
    down_all(), reap_orphans() (lifecycle.py), and fault()."""

    def fault(
        self,
        cluster: str,
        node: str,
        action: str,
        *,
        on_event: OnEvent | None = None,
        actor: str = "instructor",
        **opts,
    ) -> dict:
        """A real fault on one node. Returns what was done; records a `fault` event and, when the
        node's state changes, a `node` event through `on_event(kind, **fields)`."""
        return apply(self, cluster, node, action, on_event=on_event, actor=actor, **opts)
