"""Real faults on one node of a cluster: signals to its server process, and orders to its TCP proxy
(partition, latency, drop, lose-reply). Each fault is a function of (lifecycle, cluster, node,
**options) that changes the node and returns what it did; apply() runs one under the cluster's
lock, saves the cluster and reports the events. Plain Python."""

import signal
import time
from collections.abc import Callable

from . import procs, proxy
from .lifecycle import Lifecycle
from .model import Cluster, ClusterError, Node, NodeFailed, NodeNotUp, OnEvent, node_event
from .servers import KINDS, expire_session
from .state import check_name

MAX_LATENCY_MS = 60_000


def require_state(node: Node, *states: str, doing: str) -> None:
    if node.state not in states:
        raise NodeNotUp(node.name, node.state, f"cannot {doing} {node.name}: it is {node.state}")


def control(node: Node, request: dict) -> dict:
    """One order to the node's proxy, over its control port."""
    try:
        answer = proxy.control(node.control_port, request)
    except (OSError, ValueError) as exc:
        raise NodeFailed(f"the proxy of {node.name} does not answer ({exc}); restart the node") from None
    if not answer.get("ok"):
        raise NodeFailed(f"the proxy of {node.name} refused: {answer.get('error')}")
    return answer


def kill(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    require_state(node, "up", "paused", doing="kill")
    pid = node.pid
    procs.kill(pid, node.pid_start)
    node.gone()
    return {"signal": "SIGKILL", "pid": pid}


def stop(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    require_state(node, "up", "paused", doing="stop")
    pid = node.pid
    how = procs.terminate(pid, node.pid_start, timeout=20.0)
    node.gone()
    return {"signal": "SIGTERM" if how == "terminated" else "SIGKILL", "pid": pid}


def restart(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    """Stops the node if it runs, then starts it again on the same data directory and ports."""
    old = node.pid
    if node.state in ("up", "paused"):
        procs.terminate(old, node.pid_start, timeout=20.0)
    node.gone()
    tools = life.require(**{node.kind: 1})
    if not cluster.proxy_alive(node):
        life.start_proxy(node)
    life.start_server(node, tools)
    try:
        life.wait_ready(cluster, [node], tools, life.start_timeout)
    except NodeFailed:
        procs.kill(node.pid, node.pid_start)
        node.gone()
        raise
    node.state = "up"
    return {"pid": node.pid, **({"old_pid": old} if old else {})}


def pause(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    require_state(node, "up", doing="pause")
    procs.send(node.pid, signal.SIGSTOP, node.pid_start)
    deadline = time.monotonic() + 5
    while not procs.stopped(node.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    node.state = "paused"
    return {"signal": "SIGSTOP", "pid": node.pid}


def resume(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    require_state(node, "paused", doing="resume")
    procs.send(node.pid, signal.SIGCONT, node.pid_start)
    node.state = "up"
    return {"signal": "SIGCONT", "pid": node.pid}


def partition(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    answer = control(node, {"op": "set", "partitioned": True})
    node.partitioned = True
    return {"partitioned": True, "connections": answer["connections"]}


def heal(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    answer = control(node, {"op": "set", "partitioned": False})
    node.partitioned = False
    return {"partitioned": False, "connections": answer["connections"]}


def latency(life: Lifecycle, cluster: Cluster, node: Node, ms: int | None = None) -> dict:
    if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_LATENCY_MS:
        raise ClusterError(f"latency takes ms, a whole number from 0 to {MAX_LATENCY_MS}")
    control(node, {"op": "set", "latency_ms": ms})
    node.latency_ms = ms
    return {"ms": ms}


def drop(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    answer = control(node, {"op": "drop"})
    return {"dropped": answer["dropped"]}


def lose_reply(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    """The next request through the node's proxy reaches the server, but its answer does not come
    back: the connection is cut once the server has answered (a COMMIT done, its OK lost)."""
    require_state(node, "up", doing="lose a reply from")
    answer = control(node, {"op": "lose-reply"})
    return {"armed": answer["lose_reply"]}


def kill_connections(life: Lifecycle, cluster: Cluster, node: Node) -> dict:
    require_state(node, "up", doing="kill the connections of")
    try:
        return KINDS[node.kind]({}, life.base_dir).kill_connections(node)
    except ValueError as exc:
        raise ClusterError(str(exc)) from None


def expire(life: Lifecycle, cluster: Cluster, node: Node, client_id=None) -> dict:
    if node.kind != "zookeeper":
        raise ClusterError("expire-session is for ZooKeeper nodes")
    require_state(node, "up", doing="expire a session on")
    if not client_id:
        raise ClusterError("expire-session needs client_id=(session id, password) of the client's session")
    # Straight to the server, not through the proxy: it works while the node is partitioned.
    return expire_session(f"127.0.0.1:{node.port}", client_id)


FAULTS: dict[str, Callable[..., dict]] = {
    "kill": kill,
    "stop": stop,
    "restart": restart,
    "pause": pause,
    "resume": resume,
    "partition": partition,
    "heal": heal,
    "latency": latency,
    "drop": drop,
    "lose-reply": lose_reply,
    "kill-connections": kill_connections,
    "expire-session": expire,
}
ACTIONS = tuple(FAULTS)
# What a person can ask for by its name alone (a button, `lab cluster fault NAME NODE ACTION`):
# latency takes its milliseconds, and a session to expire is a client's own.
NAMED = tuple(a for a in ACTIONS if a not in ("latency", "expire-session"))


def apply(
    life: Lifecycle, cluster: str, node: str, action: str, *, on_event: OnEvent | None, actor: str, **opts
) -> dict:
    """Runs one fault under the cluster's lock and saves what it changed; then a `fault` event and a
    `node` event for each node whose state changed (found dead on the way, or by this fault)."""
    check_name(cluster)
    if action not in FAULTS:
        raise ClusterError(f"unknown fault {action!r} (faults: {', '.join(ACTIONS)})")
    with life.store.lock(cluster):
        found = life.store.get(cluster)
        changes = [(n, n.state) for n in found.refresh()]
        try:
            target = found.node(node)
        except KeyError:
            raise ClusterError(f"no node {node!r} in cluster {cluster!r} (nodes: {', '.join(found.names)})") from None
        before = target.state
        try:
            detail = FAULTS[action](life, found, target, **opts)
        finally:
            life.store.save(found)
        if action == "restart" and before in ("up", "paused"):
            changes.append((target, "down"))
        if target.state != before or action == "restart":
            changes.append((target, target.state))
    if on_event is not None:
        label = f"latency {target.latency_ms} ms {node}" if action == "latency" else f"{action} {node}"
        data = {"kind": action, "cluster": cluster, "node": node, **detail}
        on_event("fault", actor=actor, to=node, label=label, data=data)
        for changed, state in changes:
            node_event(on_event, cluster, changed, state)
    return {"cluster": cluster, "node": node, "action": action, "state": target.state, **detail}
