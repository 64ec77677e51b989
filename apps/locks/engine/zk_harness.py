"""The ZooKeeper scenarios' client harness: plain Python against the run's real ZooKeeper and
MariaDB (`ctx.nodes`). Each client has its own ZooKeeper session and its own storage connection, in
a thread of its own; a round runs their operations side by side, and the faults an instructor may
inject (pause, resume, expire a session) act on them."""

import threading
import time

from kazoo.client import KazooClient

from apps.runs.engine_api import RunStopped, cmd

from .storage import Storage
from .zk_board import Board, client_state
from .zk_recipe import READ, WRITE, ZOOKEEPER, LockCancelled, LockLost, ZkLockRecipe

ROW = 1
SESSION_S = 10.0
# How long the clients may all be waiting before the round's thread takes a step boundary itself.
QUIET_S = 0.25


def zk_endpoint(nodes):
    """(hosts, chroot) of the run's ZooKeeper: the shared node under the run's znode root (created
    here), or a dedicated node of its own."""
    nodes.zk()
    hosts = getattr(nodes, "zk_hosts", None) or nodes.cluster.zk_hosts
    return hosts, getattr(nodes, "zk_root", "")


def expire_session(hosts, client_id, timeout=SESSION_S):
    """Expires a session for real: closing its socket expires nothing, so a second client joins
    the session (same id and password) and closes it. The server deletes its ephemeral znodes."""
    twin = KazooClient(hosts=hosts, client_id=client_id, timeout=timeout)
    twin.start(timeout=timeout)
    try:
        twin.stop()
    finally:
        twin.close()
    return hex(client_id[0])


class ZkClient:
    """One client of the lab: its own ZooKeeper session and its own storage connection."""

    def __init__(self, run, name):
        self.run = run
        self.ctx = run.ctx
        self.name = name
        self.zk = KazooClient(hosts=run.hosts + run.root, timeout=SESSION_S)
        cmd(
            self.ctx.emit,
            name,
            ZOOKEEPER,
            "connect",
            lambda: self.zk.start(timeout=SESSION_S),
            summary=lambda _: f"session {hex(self.zk.client_id[0])}",
        )
        self.storage = run.storage.client(name)
        self.paused = threading.Event()
        self.pause_at = None  # a checkpoint where the scenario pauses this client
        self.reached = threading.Event()  # set when it stops there
        self.recipe = None
        self.token = None

    def show(self, state, token=None):
        client_state(self.ctx, self.name, state, token, self.run.board.shown)

    def checkpoint(self, where):
        """A step boundary; a paused client stops here, holding whatever it holds, until resumed."""
        self.run.step()
        if self.pause_at == where:
            self.pause_at = None
            self.paused.set()
        if not self.paused.is_set():
            return
        self.show("paused", self.token)
        self.reached.set()
        while self.paused.is_set() and not self.ctx.cancelled.is_set():
            time.sleep(0.05)
        self.run.step()  # raises if the run was stopped meanwhile
        self.show("holding" if self.token is not None else "idle", self.token)

    def hold(self):
        """Stays in the critical section for the run's hold_ms; a pause stops it right there."""
        end = time.monotonic() + self.run.hold_ms / 1000.0
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.05, left))
            if self.paused.is_set():
                self.checkpoint("holding")

    def operate(self, mode=WRITE, herd=False, ahead=None):
        """One operation under the lock: an increment (write) or a read of the counter. `ahead`:
        the first operation of a round waits until that many clients have queued before it."""
        ctx, board = self.ctx, self.run.board
        # Each client takes its turn to queue first, then its step boundary: a boundary taken while
        # it still waits for the clients before it would let a Step press through with nothing to show.
        if ahead is not None:
            board.wait_checked(ahead)
        self.checkpoint("before-acquire")
        recipe = ZkLockRecipe(
            self.zk,
            board.path,
            self.name,
            mode=mode,
            herd=herd,
            observer=board,
            cancelled=ctx.cancelled,
            emit=ctx.emit,
            history=ctx.history,
        )
        self.recipe = recipe
        self.show("acquiring")
        op = ctx.history.invoke(self.name, "increment" if mode == WRITE else "read")
        try:
            token = recipe.acquire()
        except LockLost as exc:
            ctx.history.fail(op, error=str(exc))
            ctx.emit("log", actor=self.name, label=f"{self.name} lost its place in the queue: {exc}")
            self.recipe = None
            self.show("idle")
            time.sleep(0.2)  # kazoo opens a new session; the client queues again on it
            return False
        except LockCancelled as exc:
            ctx.history.fail(op, error=str(exc))
            raise
        self.token = token
        # The znode's path goes in the operation's completion: the checkers match watches to it.
        znode = f"{recipe.path}/{recipe.node}"
        board.acquired(recipe)
        self.show("holding", token)
        if ahead is not None:
            board.wait_checked(self.run.round_size)
        board.settle()
        self.checkpoint("holding")
        section = self.storage.enter(row=ROW, token=token, mode=mode)
        self.checkpoint("in-section")
        if mode == WRITE:
            accepted = self.storage.fenced_increment(ROW, token)
            value = None
        else:
            value, _ = self.storage.read(ROW)
            accepted = None
        self.hold()
        self.storage.leave(section, accepted=accepted)
        released = recipe.release()
        if not released:
            ctx.emit("log", actor=self.name, label=f"{self.name}: its znode was already gone (session expired)")
        self.token = None
        self.recipe = None
        self.show("idle")
        if mode == READ:
            ctx.history.ok(op, {"value": value, "token": token, "znode": znode})
        elif accepted:
            self.run.count_acknowledged()
            ctx.history.ok(op, {"token": token, "znode": znode})
        else:
            ctx.history.fail(op, {"token": token, "znode": znode}, error="the storage refused a stale fencing token")
        return True

    def close(self):
        self.storage.close()
        try:
            self.zk.stop()
        finally:
            self.zk.close()


class ZkRun:
    """A run of one of the ZooKeeper scenarios: its storage, its clients, its board."""

    def __init__(self, ctx, path, hold_ms=0):
        self.ctx = ctx
        self.path = path
        self.hold_ms = hold_ms
        self.hosts, self.root = zk_endpoint(ctx.nodes)
        self.storage = Storage.on(ctx.nodes, rows=1, emit=ctx.emit).setup()
        self.board = Board(ctx, self.root, path)
        self.clients = {}
        self.round_size = 0
        self.acknowledged = 0
        self._lock = threading.Lock()
        self._stepping = 0  # clients at a step boundary now
        self._stepped_at = time.monotonic()  # when a client last passed one
        ctx.on_fault("pause", self.pause)
        ctx.on_fault("resume", self.resume)
        ctx.on_fault("expire", self.expire)
        ctx.emit("log", actor=ZOOKEEPER, label=f"the clients' sessions are rooted at {self.root or '/'}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for client in self.clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - a session already gone is closed enough
                pass
        if exc[0] is None:
            for client in self.clients.values():
                client_state(self.ctx, client.name, "done", None, self.board.shown)

    def open(self, count):
        for i in range(1, count + 1):
            name = f"c{i}"
            self.clients[name] = ZkClient(self, name)
            client_state(self.ctx, name, "idle", None, self.board.shown)
        return [self.clients[f"c{i}"] for i in range(1, count + 1)]

    def step(self):
        """A client's step boundary."""
        with self._lock:
            self._stepping += 1
        try:
            self.ctx.step()
        finally:
            with self._lock:
                self._stepping -= 1
                self._stepped_at = time.monotonic()

    def step_if_quiet(self):
        """A step boundary of the round's own thread, only when no client took one for a while
        (they all wait on watches): a fault or a stop still gets through then, and a Step press
        never lands on a boundary with nothing after it while the clients are busy."""
        with self._lock:
            quiet = self._stepping == 0 and time.monotonic() - self._stepped_at >= QUIET_S
        if quiet:
            self.ctx.step()
            with self._lock:
                self._stepped_at = time.monotonic()

    def count_acknowledged(self):
        with self._lock:
            self.acknowledged += 1

    # One round: every client runs its operations in a thread of its own ------------------------
    def round(self, clients, operations=1, modes=None, herd=False, meanwhile=None, path=None):
        """Runs the clients' operations; returns the watch notifications the round cost. The
        first operations queue in client order. `meanwhile()` runs in this thread as they go.
        `path`: the lock's path for this round (the run's by default); a round of its own path
        lets a checker tell its notifications from any other round's by their paths alone."""
        self.round_size = len(clients)
        self.board.new_round(path or self.path)
        before = self.board.notifications
        described = {"clients": len(clients), "herd": herd, "path": self.board.path}
        round_op = self.ctx.history.invoke(ZOOKEEPER, "round", described)
        errors, done = [], {c.name: threading.Event() for c in clients}

        def work(i, client):
            try:
                mode = (modes or {}).get(client.name, WRITE)
                finished = 0
                while finished < operations:
                    if client.operate(mode, herd=herd, ahead=i if finished == 0 else None):
                        finished += 1
            except (RunStopped, LockCancelled):
                pass
            except Exception as exc:  # noqa: BLE001 - raised again in the run's thread
                errors.append(exc)
                self.ctx.cancel(f"{client.name} failed: {type(exc).__name__}: {exc}", status="failed")
            finally:
                done[client.name].set()

        threads = [
            threading.Thread(target=work, args=(i, c), name=f"run{self.ctx.run_id}-{c.name}", daemon=True)
            for i, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        try:
            if meanwhile is not None:
                meanwhile(done)
            while alive := [t for t in threads if t.is_alive()]:
                alive[0].join(QUIET_S)
                self.step_if_quiet()
        finally:
            if any(t.is_alive() for t in threads):  # the run stopped, or this thread failed
                self.ctx.cancel("the run's clients were stopped", status="failed")
                for t in threads:
                    t.join(SESSION_S)
        if errors:
            raise errors[0]
        self.board.settle()
        count = self.board.notifications - before
        self.ctx.history.ok(round_op, {**described, "notifications": count})
        self.ctx.step()
        return count

    def result(self, **extra):
        return {
            "storage": self.storage.describe(),
            "acknowledged": self.acknowledged,
            "zk": self.board.counts(),
            **extra,
        }

    # Faults -----------------------------------------------------------------------------------
    def _client(self, target):
        if target not in self.clients:
            raise ValueError(f"no client {target!r} in this run (clients: {', '.join(self.clients)})")
        return self.clients[target]

    def pause(self, target, **options):
        self._client(target).paused.set()
        return {"effect": f"{target} stops at its next step, like a GC pause; its session stays alive"}

    def resume(self, target, **options):
        client = self._client(target)
        if not client.paused.is_set():
            raise ValueError(f"{target} is not paused")
        client.paused.clear()
        return {"effect": f"{target} goes on from where it stopped"}

    def expire(self, target, **options):
        client = self._client(target)
        znode = client.recipe.node if client.recipe is not None else None
        self.board.expiring(znode)
        session = expire_session(self.hosts, client.zk.client_id)
        return {"session": session, "znode": znode, "effect": f"the server closed {target}'s session"}
