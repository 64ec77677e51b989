"""The TCP proxy in front of one dedicated node. Clients connect to the proxy, never to the server,
so a fault can cut, slow down or drop their traffic while the server itself keeps running.

One small process per node, started by the supervisor in its own session so it outlives the
command that started it:

    python -m apps.cluster.proxy --listen-port 24001 --upstream-port 24000 --control-port 24002 \\
        --ready-file <node dir>/proxy.json [--partitioned] [--latency-ms N]

It binds 127.0.0.1 only. Once it listens it writes {"pid", "listen_port", "control_port"} to the
ready file (atomically), and it exits by itself when the ready file's directory disappears (the
cluster was taken down), so a proxy can never outlive its cluster for long.

Control: the control port (loopback) takes one JSON object per line and answers one JSON line,
after the change is in effect:

    {"op": "status"}                    -> {"ok": true, "partitioned": false, "latency_ms": 0, "connections": 2,
                                            "lose_reply": 0}
    {"op": "set", "partitioned": true}  partition: new connections are accepted, but nothing is relayed
                                        either way (bytes wait, as in a network that drops packets and
                                        TCP retransmits them) until {"op": "set", "partitioned": false}
    {"op": "set", "latency_ms": 200}    every chunk waits 200 ms before it is relayed, in both directions
    {"op": "drop"}                      closes every current connection (client and upstream side)
    {"op": "lose-reply"}                the next request a client sends is relayed to the server, and
                                        when the server answers, that connection is cut instead (both
                                        sides): the server did the work, the client sees a lost
                                        connection. One request per order; "status" counts those armed.

A control port rather than a polled file: the caller gets an answer once the fault is in effect,
and "drop" is an action, not a mode. The supervisor records the mode in cluster.json and passes it
back on the command line if it ever starts the proxy again.
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys

from . import procs

HOST = "127.0.0.1"
CHUNK = 65536


class Connection:
    """One client connection and, once it is made, its upstream connection."""

    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.gone = asyncio.Event()
        # Set when this connection's request took an armed lose-reply: its answer is never relayed.
        self.losing_reply = False

    @property
    def closed(self):
        return self.gone.is_set()

    def close(self, abort=False):
        self.gone.set()
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            if abort:
                writer.transport.abort()
            else:
                writer.close()


class Proxy:
    def __init__(self, upstream_port, *, partitioned=False, latency_ms=0):
        self.upstream_port = upstream_port
        self.latency_ms = int(latency_ms)
        self.connections = set()
        self.lose_replies = 0  # requests whose answers are to be lost (armed by "lose-reply")
        # Set while traffic flows; cleared by a partition. Every relay waits on it before it reads and
        # again before it writes, so a chunk already read when the partition begins is held too.
        self.flowing = asyncio.Event()
        if not partitioned:
            self.flowing.set()

    @property
    def partitioned(self):
        return not self.flowing.is_set()

    async def wait_flowing(self, conn):
        """Waits out a partition; False if the connection was closed (dropped) meanwhile."""
        if not self.flowing.is_set():
            waits = [asyncio.ensure_future(self.flowing.wait()), asyncio.ensure_future(conn.gone.wait())]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        return not conn.closed

    async def serve_client(self, reader, writer):
        conn = Connection(writer)
        self.connections.add(conn)
        try:
            # Partitioned: accepted, but no upstream connection until healed.
            if not await self.wait_flowing(conn):
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.upstream_port), 5)
            except (OSError, TimeoutError):
                # The server is down: the client sees its connection reset, as close to "refused" as a
                # proxy that must keep listening can get.
                writer.transport.abort()
                return
            conn.upstream = up_writer
            if conn.closed:  # dropped while connecting
                up_writer.transport.abort()
                return
            await asyncio.gather(
                self.relay(reader, up_writer, conn, request=True), self.relay(up_reader, writer, conn, request=False)
            )
        finally:
            self.connections.discard(conn)
            if not conn.closed:
                conn.close()

    async def relay(self, reader, writer, conn, *, request):
        """Relays one direction of a connection: the client's requests, or the server's answers."""
        try:
            while await self.wait_flowing(conn):
                data = await reader.read(CHUNK)
                if not data:
                    break
                if request and self.lose_replies and not conn.losing_reply:
                    self.lose_replies -= 1
                    conn.losing_reply = True
                elif not request and conn.losing_reply:
                    # The server has answered, so it did what was asked (a COMMIT is durable before
                    # its OK is sent); cutting the connection now is a reply lost on the way back.
                    conn.close(abort=True)
                    break
                if self.latency_ms:
                    await asyncio.sleep(self.latency_ms / 1000.0)
                if not await self.wait_flowing(conn):
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Either side hanging up ends the pair: the protocols proxied here never half-close.
            if not conn.closed:
                conn.close()

    def drop(self):
        dropped = list(self.connections)
        self.connections.clear()
        for conn in dropped:
            conn.close(abort=True)
        return len(dropped)

    def status(self):
        return {
            "ok": True,
            "partitioned": self.partitioned,
            "latency_ms": self.latency_ms,
            "connections": len(self.connections),
            "lose_reply": self.lose_replies,
        }

    async def serve_control(self, reader, writer):
        try:
            while line := await reader.readline():
                writer.write((json.dumps(self.command(line)) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def command(self, line):
        try:
            request = json.loads(line)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "send one JSON object per line with an 'op'"}
        if op == "status":
            return self.status()
        if op == "set":
            if "latency_ms" in request:
                latency = request["latency_ms"]
                if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
                    return {"ok": False, "error": "latency_ms must be a whole number of milliseconds, 0 or more"}
                self.latency_ms = latency
            if "partitioned" in request:
                if request["partitioned"]:
                    self.flowing.clear()
                else:
                    self.flowing.set()
            return self.status()
        if op == "drop":
            return {**self.status(), "dropped": self.drop()}
        if op == "lose-reply":
            self.lose_replies += 1
            return self.status()
        return {"ok": False, "error": f"unknown op {op!r} (status, set, drop, lose-reply)"}


def write_ready(path, info):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


async def main(args):
    proxy = Proxy(args.upstream_port, partitioned=args.partitioned, latency_ms=args.latency_ms)
    listener = await asyncio.start_server(proxy.serve_client, HOST, args.listen_port, reuse_address=True)
    control = await asyncio.start_server(proxy.serve_control, HOST, args.control_port, reuse_address=True)
    listen_port = listener.sockets[0].getsockname()[1]
    control_port = control.sockets[0].getsockname()[1]
    write_ready(args.ready_file, {"pid": os.getpid(), "listen_port": listen_port, "control_port": control_port})
    home = os.path.dirname(os.path.abspath(args.ready_file))
    while os.path.isdir(home):
        await asyncio.sleep(1.0)


def control(port, request, timeout=5.0):
    """Sends one control request to the proxy on `port` and returns its answer."""
    data = procs.ask(port, (json.dumps(request) + "\n").encode(), b"\n", timeout)
    if not data:
        raise ConnectionError(f"the proxy on port {port} closed the control connection without answering")
    return json.loads(data)


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m apps.cluster.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--partitioned", action="store_true")
    parser.add_argument("--latency-ms", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse(sys.argv[1:])))
