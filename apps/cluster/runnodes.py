"""A run's view of its dedicated nodes: the same interface as the shared nodes (apps.runs.nodes),
so an engine runs unchanged on either, plus the process faults only dedicated nodes allow.
Plain Python: no Django."""

import redis
from kazoo.client import KazooClient

from apps.runs.nodes import NAME, RunClients, connect_mariadb

KINDS = ("mariadb", "redis", "zookeeper")


class DedicatedNodes(RunClients):
    def __init__(self, run_id, supervisor, cluster, *, emit, timeout=5.0):
        super().__init__()
        self.run_id = run_id
        self.supervisor = supervisor
        self.cluster = cluster
        self.timeout = timeout
        self._emit = emit
        self.names = tuple(cluster.names)
        # The first node of each kind plays that part for engines written for the shared nodes.
        self.roles = {kind: nodes[0].name for kind in KINDS if (nodes := cluster.of_kind(kind))}

    @classmethod
    def start(cls, run_id, supervisor, spec, *, emit, owner_pid):
        cluster = supervisor.up(f"run{run_id}", **spec, owner_pid=owner_pid, on_event=emit)
        return cls(run_id, supervisor, cluster, emit=emit)

    def database(self, name):
        if not NAME.match(name):
            raise ValueError(f"bad database name {name!r}: use a-z, 0-9 and _, at most 32 characters")
        return name  # the whole server is the run's own

    def mariadb_params(self, node=None):
        """pymysql.connect() arguments for a MariaDB node (the first one by default), through its proxy."""
        return self.cluster.node(node or self.roles["mariadb"]).mysql_params()

    def mariadb(self, db=None, node=None, **options):
        params = self.mariadb_params(node)
        conn = connect_mariadb(params, db and self.database(db), self.timeout, **options)
        self._mysql.append(conn)
        return conn

    def redis_address(self, node=None):
        """A Redis node's URL (the first one by default), through its proxy."""
        return self.cluster.node(node or self.roles["redis"]).url

    def redis(self, node=None):
        name = node or self.roles["redis"]
        if name not in self._redis:
            self._redis[name] = redis.Redis.from_url(
                self.cluster.node(name).url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
            )
        return self._redis[name]

    def key(self, *parts):
        return ":".join(str(p) for p in parts)

    def zk(self):
        if self._zk is None:
            self._zk = KazooClient(hosts=self.cluster.zk_hosts, timeout=self.timeout)
            self._zk.start(timeout=self.timeout)
        return self._zk

    def fault(self, kind, target, emit=None, **options):
        """A real fault on the run's own node process or its proxy: a `fault` event, then a `node`
        event for each node whose state it changed."""
        if kind == "expire-session" and self._zk is not None:
            options.setdefault("client_id", self._zk.client_id)
        return self.supervisor.fault(self.cluster.name, target, kind, on_event=emit or self._emit, **options)

    def cleanup(self):
        """Stops every process of the run's cluster and removes its data. The nodes it stops are
        told "stopped", not "down": the run is over, nothing failed (a node a fault took down
        earlier was told so then, and is not running now)."""
        self.close()
        self.supervisor.down(self.cluster.name, missing_ok=True, on_event=stopped_at_tear_down(self._emit))


def stopped_at_tear_down(emit):
    """`emit` with each `node` event of a normal tear-down saying "stopped" instead of "down"."""

    def on_event(kind, **fields):
        data = fields.get("data") or {}
        if kind == "node" and data.get("state") == "down":
            fields = {**fields, "label": f"{fields.get('actor', '')} stopped", "data": {**data, "state": "stopped"}}
        return emit(kind, **fields)

    return on_event
