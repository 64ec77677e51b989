"""The diagnostics lab: real round-trips to every shared node, and a stream load generator.

Plain Python: runs against the real servers through `ctx.nodes`; no Django, no Celery; of the
platform it imports only the engine API. Every connect and probe goes through `ctx.cmd`, so each
is recorded as one `cmd` event, answered or not.
"""

import time
from collections.abc import Callable

from apps.runs.engine_api import Context, describe_error, timed

ACTOR = "prober"


def _probes(ctx):
    """For each node: the exact command sent, a function that opens the client, and one that sends
    the command on it (reconnecting first if a fault killed the connection)."""
    state = {}

    def connect_mariadb():
        state["mariadb"] = ctx.nodes.mariadb(read_timeout=5)  # a paused server shows as a failed probe

    def mariadb():
        if state.get("mariadb") is None or not state["mariadb"].open:
            connect_mariadb()
        try:
            with state["mariadb"].cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone()[0]
        except Exception:
            state["mariadb"] = None  # reconnect on the next round
            raise

    def connect_redis():
        pool = ctx.nodes.redis().connection_pool
        pool.release(pool.get_connection())

    def redis():
        return "PONG" if ctx.nodes.redis().ping() else "no answer"

    def zookeeper():
        stat = ctx.nodes.zk().exists("/")
        return f"exists (version {stat.version})" if stat else "missing"

    names = ctx.nodes.roles  # the node playing each part: "mariadb" on the shared nodes, "db1" on a cluster
    return [
        (names["mariadb"], "SELECT 1", connect_mariadb, mariadb),
        (names["redis"], "PING", connect_redis, redis),
        (names["zookeeper"], "exists /", ctx.nodes.zk, zookeeper),
    ]


def probe(ctx: Context, node: str, command: str, send: Callable[[], object]) -> tuple[str, float]:
    """Sends one probe through `ctx.cmd`; returns the reply and the round-trip in ms, timed around
    the command alone (not its recording), for the latency chart."""
    took = []

    def measured():
        reply, ms = timed(send)
        took.append(ms)
        return reply

    reply = ctx.cmd(node, command, measured, actor=ACTOR, summary=str)
    return str(reply), took[0]


def ping(ctx: Context) -> dict:
    rounds = ctx.params["rounds"]
    probes = _probes(ctx)
    ctx.emit("node", actor=ACTOR, label="prober up", data={"state": "up", "role": "client"})
    for node, _, _, _ in probes:
        ctx.emit("node", actor=node, label=f"{node} up", data={"state": "up", "role": "server"})
    # Connections are opened before the rounds, so the latency chart shows round-trips only.
    for node, _, connect, _ in probes:
        try:
            ctx.cmd(node, "connect", connect, actor=ACTOR, summary=lambda _: "connected")
        except Exception:  # noqa: BLE001 - recorded; the rounds will show this node not answering
            pass
    ctx.step()
    answered = {node: 0 for node, _, _, _ in probes}
    for r in range(1, rounds + 1):
        ctx.emit("phase", actor=ACTOR, label=f"round {r} of {rounds}", data={"phase": "round", "round": r})
        for node, command, _, send in probes:
            op = ctx.history.invoke(ACTOR, "ping", node)
            request = ctx.emit("msg", actor=ACTOR, to=node, label=command, data={"round": r})
            try:
                reply, ms = probe(ctx, node, command, send)
            except Exception as exc:  # noqa: BLE001 - any failure is this node not answering
                error = describe_error(exc)
                # No reply came: the prober notes that on its own line, so the request does not
                # seem to be still on its way.
                ctx.emit(
                    "msg",
                    actor=ACTOR,
                    to=ACTOR,
                    label=f"no answer from {node}",
                    data={"about": request["seq"], "error": error},
                )
                ctx.emit("state", actor=node, label=f"{node} did not answer", data={"state": "unreachable"})
                ctx.history.fail(op, node, error=error)
            else:
                ctx.emit("msg", actor=node, to=ACTOR, label=reply, data={"reply_to": request["seq"], "ms": ms})
                ctx.emit(
                    "metric",
                    actor=ACTOR,
                    label="latency_ms",
                    data={"name": "latency_ms", "series": node, "x": r, "y": ms, "x_label": "round"},
                )
                ctx.emit(
                    "state", actor=node, label=f"{node} answered in {ms:.2f} ms", data={"state": "up", "last_ms": ms}
                )
                answered[node] += 1
                ctx.history.ok(op, node)
            ctx.step()
    return {"rounds": rounds, "answered": answered}


def stream_load(ctx: Context) -> dict:
    """Emits `events` events as fast as it can (or at `rate` per second), each stamped with the
    wall-clock time it was emitted, so a viewer can measure emit-to-receive latency."""
    total, rate = ctx.params["events"], ctx.params["rate"]
    ctx.emit("node", actor="generator", label="generator up", data={"state": "up", "role": "client"})
    began = time.monotonic()
    for i in range(1, total + 1):
        if rate:
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        ctx.emit("metric", actor="generator", label="load", data={"name": "load", "i": i, "wall": time.time()})
        if i % 1000 == 0:
            ctx.step()
    return {"emitted": total}
