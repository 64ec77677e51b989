"""What the supervisor knows about a cluster and its nodes, as stored in cluster.json and as handed
to callers, and the errors it raises. Plain Python: no Django."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from apps.runs.engine_api import NodeDown

from . import procs
from .servers import KINDS, MARIADB_PASSWORD, MARIADB_USER

OnEvent = Callable[..., Any]  # a run's ctx.emit(kind, **fields) fits


class ClusterError(Exception):
    """A request the supervisor refuses: a bad name, the cap, no local binaries, an unknown node."""


class NodeNotUp(ClusterError, NodeDown):
    """A fault asked of a node in a state that cannot take it (killing a node that is down)."""


class NodeFailed(ClusterError):
    """A node process did not do what it was asked (it did not start, or did not answer in time)."""


# Kept in cluster.json only where they apply (socket: MariaDB; myid and the ensemble ports:
# ZooKeeper; options: MariaDB started with options), as the file has always been written.
OPTIONAL = ("socket", "myid", "peer_port", "election_port", "options")


@dataclass
class Node:
    name: str
    kind: str
    dir: str
    port: int  # the server's own port
    proxy_port: int  # where clients connect
    control_port: int  # the proxy's control socket
    id: str = ""  # <cluster>-<node>, unique across clusters
    state: str = "starting"  # "starting" | "up" | "down" | "paused"
    pid: int | None = None
    pid_start: int | None = None  # the start time that makes `pid` this process and no later one
    proxy_pid: int | None = None
    proxy_start: int | None = None
    partitioned: bool = False
    latency_ms: int = 0
    socket: str | None = None
    myid: int | None = None
    peer_port: int | None = None
    election_port: int | None = None
    options: list[str] = field(default_factory=list)  # extra MariaDB settings, kept across restarts
    proxy_up: bool = False  # not stored: whether the proxy ran when the cluster was last looked at

    host = "127.0.0.1"

    @property
    def address(self) -> str:
        """Where clients connect: the node's proxy."""
        return f"{self.host}:{self.proxy_port}"

    @property
    def url(self) -> str:
        return KINDS[self.kind].url(self.proxy_port)

    def mysql_params(self, direct: bool = False) -> dict[str, Any]:
        """pymysql.connect() keyword arguments for a MariaDB node, through its proxy unless `direct`."""
        port = self.port if direct else self.proxy_port
        return {
            "host": self.host,
            "port": port,
            "user": MARIADB_USER,
            "password": MARIADB_PASSWORD,
            "ssl_disabled": True,
        }

    def gone(self) -> None:
        """Records that the server process is no longer running."""
        self.state, self.pid, self.pid_start = "down", None, None

    def to_dict(self) -> dict[str, Any]:
        """The node as callers see it (CLI, admin page, a run's summary)."""
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

    def to_record(self) -> dict[str, Any]:
        out = asdict(self)
        del out["proxy_up"]
        for key in OPTIONAL:
            if out[key] in (None, []):
                del out[key]
        return out

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Node":
        known = {f.name for f in fields(cls)} - {"proxy_up"}
        return cls(**{k: v for k, v in rec.items() if k in known})


@dataclass
class Cluster:
    name: str
    created: float
    owner_pid: int | None  # None for a cluster the CLI started: no owner to outlive
    dir: str
    nodes: list[Node] = field(default_factory=list)
    ready_s: float | None = None  # how long up() took, when this came from up()
    owner_start: int | None = None
    boot_id: str = ""  # pids and start times mean nothing after a reboot
    state: str = "starting"  # "starting" until every node answers, then "up"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in cluster {self.name!r} (nodes: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]

    @property
    def zk_hosts(self) -> str:
        """A kazoo hosts string for the cluster's ZooKeeper nodes, through their proxies."""
        return ",".join(n.address for n in self.of_kind("zookeeper"))

    def to_dict(self) -> dict[str, Any]:
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

    # cluster.json ---------------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "version": 1,
            "name": self.name,
            "created": self.created,
            "boot_id": self.boot_id,
            "owner_pid": self.owner_pid,
            "owner_start": self.owner_start,
            "state": self.state,
            "nodes": {n.name: n.to_record() for n in self.nodes},
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], dir: str) -> "Cluster":
        return cls(
            name=record["name"],
            created=record["created"],
            owner_pid=record.get("owner_pid"),
            dir=dir,
            nodes=[Node.from_record(rec) for rec in record["nodes"].values()],
            owner_start=record.get("owner_start"),
            boot_id=record.get("boot_id", ""),
            state=record.get("state", "starting"),
        )

    # Liveness, from /proc ---------------------------------------------------------------------------
    def same_boot(self) -> bool:
        return self.boot_id == procs.boot_id()

    def server_alive(self, node: Node) -> bool:
        procs.reap(node.pid or 0)
        return self.same_boot() and procs.alive(node.pid, node.pid_start)

    def proxy_alive(self, node: Node) -> bool:
        procs.reap(node.proxy_pid or 0)
        return self.same_boot() and procs.alive(node.proxy_pid, node.proxy_start)

    def owner_alive(self) -> bool:
        if self.owner_pid is None:
            return True
        return self.same_boot() and procs.alive(self.owner_pid, self.owner_start)

    def refresh(self) -> list[Node]:
        """Makes each node's state say what its process is doing now, and `proxy_up` whether its
        proxy runs; returns the nodes whose state changed."""
        changed = []
        for node in self.nodes:
            node.proxy_up = self.proxy_alive(node)
            if node.state not in ("up", "paused"):
                continue
            if not self.server_alive(node):
                state = "down"
            elif procs.stopped(node.pid):
                state = "paused"
            else:
                state = "up"
            if state != node.state:
                if state == "down":
                    node.gone()
                node.state = state
                changed.append(node)
        return changed


def node_event(on_event: OnEvent | None, cluster: str, node: Node, state: str | None = None) -> None:
    """A `node` event: the node appears, or changes state (up, down, paused)."""
    if on_event is None:
        return
    state = state or node.state
    on_event(
        "node",
        actor=node.name,
        label=f"{node.name} {state}",
        data={"state": state, "role": "server", "kind": node.kind, "cluster": cluster, "address": node.address},
    )
