"""ZooKeeper lock recipes, built step by step on kazoo's primitives so that every step can be shown.

The exclusive lock (the recipe of ZooKeeper's documentation):
  1. create an EPHEMERAL_SEQUENTIAL znode under the lock's path;
  2. get the children WITHOUT a watch: if ours has the lowest sequence number, we hold the lock;
  3. otherwise exists() with a watch on the znode just before ours, and only that one; when it goes,
     back to 2 (it may have been a waiter whose session ended, not the holder).
Releasing deletes our znode, which wakes exactly one client: our successor. A session that expires
loses its znode too, so the lock changes hands while its old holder is paused; the znode's creation
zxid (czxid) only grows, so it serves as a fencing token.

The herd variant watches the parent's children instead: every change wakes every waiter, so a queue
of N clients costs about N²/2 notifications instead of N - 1.

Read/write locks: a read znode waits only for the write znodes before it, a write znode for every
znode before it. Znode names follow kazoo's (`<owner>__lock__<seq>`, `<owner>__rlock__<seq>`), so
kazoo's Lock, WriteLock and ReadLock on the same path queue together with these recipes.
"""

import re
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, LockTimeout, NoNodeError, SessionExpiredError
from kazoo.protocol.states import ZnodeStat

from apps.runs.context import RunStopped
from apps.runs.registry import Check

from .storage import Storage

WRITE, READ = "write", "read"
NODE_NAMES = {WRITE: "__lock__", READ: "__rlock__"}
CONTENDER = re.compile(r"(__lock__|__rlock__)(\d{10})$")
# How often a waiter looks up from its watch to see whether the run was stopped.
POLL_S = 0.25


class LockLost(Exception):
    """Our znode is gone while we waited (our session expired): we are no longer in the queue."""


class LockCancelled(Exception):
    """The run stopped while we waited."""


def contenders(children):
    """The lock's queue from a list of children: [(sequence, znode, mode)] in sequence order."""
    queue = []
    for child in children:
        m = CONTENDER.search(child)
        if m:
            queue.append((int(m.group(2)), child, READ if m.group(1) == NODE_NAMES[READ] else WRITE))
    return sorted(queue)


def owner_of(znode):
    """c2__lock__0000000003 -> c2 (kazoo's own contenders have a uuid there)."""
    return znode.split("__", 1)[0] or "?"


def describe(result):
    """A ZooKeeper reply in a few words, for a `cmd` event."""
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], ZnodeStat):
        return f"{result[0].rsplit('/', 1)[-1]} (czxid {result[1].czxid})"
    if isinstance(result, ZnodeStat):
        return f"exists (czxid {result.czxid})"
    if isinstance(result, list):
        return "[" + ", ".join(z for _, z, _ in contenders(result)) + "]"
    if result is None:
        return "no node"
    return str(result)


class Observer:
    """What a recipe reports about each step. This one tells no one (a benchmark, kazoo parity)."""

    def cmd(self, recipe, command, result, ms, ok=True):
        pass

    def changing(self, recipe, znode):
        """Just before a create (znode None) or a delete of `znode` under the lock's path."""

    def created(self, recipe):
        pass

    def watching(self, recipe, target):
        """After a check: `target` is the znode or path watched, or None when the lock is ours."""

    def notified(self, recipe, event, waiting):
        """A watch fired (in kazoo's event thread); `waiting` says whether the recipe was waiting."""

    def gone(self, recipe, znode):
        """Our znode was deleted, or found missing."""


SILENT = Observer()


class ZkLockRecipe:
    """One contender for the lock at `path` on the session `zk` (a started KazooClient)."""

    def __init__(self, zk, path, owner, *, mode=WRITE, herd=False, observer=None, cancelled=None):
        if mode not in NODE_NAMES:
            raise ValueError(f"a lock's mode is {WRITE} or {READ}, not {mode!r}")
        self.zk = zk
        self.path = path.rstrip("/")
        self.owner = owner
        self.mode = mode
        self.herd = herd
        self.observer = observer or SILENT
        self._traced = observer is not None
        self.cancelled = cancelled or threading.Event()
        self.node = None
        self.token = None
        self.watches = None
        self.waits = 0  # how many times the last acquire() waited for a watch
        self._wake = threading.Event()
        self._waiting = False

    # The recipe -------------------------------------------------------------------------------
    def acquire(self, timeout=None):
        """Queues and waits for the lock; returns the fencing token (our znode's czxid). Raises
        kazoo's LockTimeout after `timeout` seconds, LockLost when our session expires meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        prefix = f"{self.path}/{self.owner}{NODE_NAMES[self.mode]}"
        self.waits = 0
        self.observer.changing(self, None)
        try:
            created, stat = self._call(
                f"create -e -s {prefix}",
                self.zk.create,
                prefix,
                b"",
                ephemeral=True,
                sequence=True,
                makepath=True,
                include_data=True,
            )
        except (SessionExpiredError, ConnectionLoss) as exc:
            raise LockLost(f"the session of {self.owner} ended before its znode was created") from exc
        self.node, self.token = created.rsplit("/", 1)[1], stat.czxid
        self.observer.created(self)
        self.zk.add_listener(self._on_session)
        try:
            return self._wait_for_turn(deadline)
        except (SessionExpiredError, ConnectionLoss) as exc:
            # The session ended under us (kazoo opens a new one): our znode went with the old one.
            node, self.node = self.node, None
            self.observer.gone(self, node)
            raise LockLost(f"{node} is gone: the session of {self.owner} expired") from exc
        finally:
            self.zk.remove_listener(self._on_session)

    def _wait_for_turn(self, deadline):
        while True:
            self._wake.clear()
            if self.herd:
                children = self._call(
                    f"get_children {self.path} watch", self.zk.get_children, self.path, watch=self._on_children
                )
            else:
                children = self._call(f"get_children {self.path}", self.zk.get_children, self.path)
            queue = contenders(children)
            if all(z != self.node for _, z, _ in queue):
                node, self.node = self.node, None
                self.observer.gone(self, node)
                raise LockLost(f"{node} is gone: the session of {self.owner} expired")
            blocker = self.blocker(queue)
            if blocker is None:
                self.watches = None
                self.observer.watching(self, None)
                return self.token
            if self.herd:
                target = self.path
            else:
                target = blocker
                watched = f"{self.path}/{blocker}"
                if self._call(f"exists {watched} watch", self.zk.exists, watched, watch=self._on_deleted) is None:
                    continue  # gone between the two calls: look again
            self.watches = target
            self.waits += 1
            self._waiting = True
            self.observer.watching(self, target)
            try:
                self._sleep(deadline)
            finally:
                self._waiting = False

    def blocker(self, queue):
        """The znode we wait for: the last one before ours that excludes us (any for a writer, a
        writer's for a reader), or None when the lock is ours."""
        mine = sequence(self.node)
        earlier = [z for seq, z, mode in queue if seq < mine and (self.mode == WRITE or mode == WRITE)]
        return earlier[-1] if earlier else None

    def release(self):
        """Deletes our znode; False when it was already gone (our session expired under us)."""
        if self.node is None:
            return False
        node, self.node = self.node, None
        self.observer.changing(self, node)
        try:
            self._call(f"delete {self.path}/{node}", self.zk.delete, f"{self.path}/{node}")
            return True
        except (NoNodeError, SessionExpiredError, ConnectionLoss):
            return False
        finally:
            self.observer.gone(self, node)

    # Waiting ----------------------------------------------------------------------------------
    def _sleep(self, deadline):
        while not self._wake.is_set():
            if self.cancelled.is_set():
                raise LockCancelled(f"{self.owner} stopped waiting: the run is over")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise LockTimeout(f"{self.owner} did not get {self.path} in time")
            self._wake.wait(POLL_S if remaining is None else min(POLL_S, remaining))

    def _on_deleted(self, event):
        self.observer.notified(self, event, self._waiting)
        self._wake.set()

    def _on_children(self, event):
        self.observer.notified(self, event, self._waiting)
        self._wake.set()

    def _on_session(self, state):
        if state == KazooState.LOST:
            self._wake.set()  # our znode went with the session: look again, and find it gone

    def _call(self, command, fn, *args, **kwargs):
        if not self._traced:
            return fn(*args, **kwargs)
        began = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.observer.cmd(self, command, type(exc).__name__, _ms(began), ok=False)
            raise
        self.observer.cmd(self, command, describe(result), _ms(began))
        return result


def sequence(znode):
    return int(CONTENDER.search(znode).group(2))


def _ms(began):
    return round((time.perf_counter() - began) * 1000.0, 3)


# The lab's runs -----------------------------------------------------------------------------------
# Plain Python against the run's real ZooKeeper and MariaDB (`ctx.nodes`): each client has its own
# ZooKeeper session and its own storage connection, in a thread of its own.

ZOOKEEPER = "zookeeper"
LOCK_PATH = "/locks/lock"
RW_PATH = "/locks/rw"
ROW = 1
SESSION_S = 10.0
# How long a client waits for the others to queue, or for a hand-over's notifications to arrive,
# before it goes on anyway (a client paused by an instructor must not hold up the rest for ever).
GATE_S = 5.0
SETTLE_S = 2.0
PREDECESSOR, HERD = "watch the predecessor", "watch the parent (herd)"


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


class Board(Observer):
    """The lock's queue as a run's recipes report it. It records every step as an event, counts the
    watch notifications, and paces each round so that a seed gives the same picture: clients queue
    in order (c1 first), and a new holder starts only once the clients its hand-over woke up have
    looked at the queue again."""

    def __init__(self, ctx, root, path):
        self.ctx = ctx
        self.path = path
        self.shown = root + path
        self.cond = threading.Condition()
        self.entries = {}  # znode -> {"znode", "client", "mode", "watches"}
        self.watch_of = {}  # client -> what its pending watch is on
        self.pending = set()  # clients a change will notify and that have not heard yet
        self.inflight = set()  # notified waiters that have not looked at the queue again yet
        self.checked = set()  # clients that looked at the queue once in this round
        self.notifications = 0
        self.by_znode = {}  # deleted znode -> how many clients its deletion woke
        self.child_notifications = 0
        self.acquisitions = 0
        self.handovers = 0  # acquisitions that had to wait for a watch first
        self.holders = set()  # the znodes that held the lock
        self.per_client = {}  # (client, counter) -> value, shown on the client's lane

    # Observer ---------------------------------------------------------------------------------
    def cmd(self, recipe, command, result, ms, ok=True):
        data = {"node": ZOOKEEPER, "command": command, "result": result, "ms": ms}
        if not ok:
            data.update(ok=False, error=result)
        self.ctx.emit("cmd", actor=recipe.owner, to=ZOOKEEPER, label=command, data=data)

    def changing(self, recipe, znode):
        self._changes(znode)

    def created(self, recipe):
        with self.cond:
            self.entries[recipe.node] = {
                "znode": recipe.node,
                "client": recipe.owner,
                "mode": recipe.mode,
                "watches": None,
            }
            self._show()

    def watching(self, recipe, target):
        with self.cond:
            self.inflight.discard(recipe.owner)
            if target is None and recipe.herd:
                # The herd's last get_children left a watch on the parent: it fires on the next change.
                self.watch_of[recipe.owner] = self.path
            elif target is None:
                self.watch_of.pop(recipe.owner, None)
            else:
                self.watch_of[recipe.owner] = target
            if recipe.node in self.entries:
                self.entries[recipe.node]["watches"] = self.shown if target == self.path else target
            self.checked.add(recipe.owner)
            self._show()
            self.cond.notify_all()
        if target is not None:
            client_state(self.ctx, recipe.owner, "waiting", None, self.shown)

    def notified(self, recipe, event, waiting):
        owner = recipe.owner
        if event.type not in ("DELETED", "CHILD"):
            # kazoo voids the watches of a session that ended (type NONE): no change was notified.
            with self.cond:
                self.pending.discard(owner)
                self.watch_of.pop(owner, None)
                self.cond.notify_all()
            self.ctx.emit("log", actor=owner, label=f"{owner}'s watch ended with its session ({event.state})")
            return
        with self.cond:
            self.notifications += 1
            if event.type == "DELETED":
                znode = event.path.rsplit("/", 1)[-1]
                self.by_znode[znode] = self.by_znode.get(znode, 0) + 1
                self.entries.pop(znode, None)
                label = f"watch fired: {znode} deleted"
            else:
                znode = self.shown
                self.child_notifications += 1
                label = f"watch fired: {self.shown} children changed"
            self.pending.discard(owner)
            self.watch_of.pop(owner, None)
            if waiting:
                self.inflight.add(owner)
            count = self._count(owner, "notifications")
            data = {"type": "watch", "znode": znode, "event": "DELETED" if event.type == "DELETED" else "CHILD"}
            self.ctx.emit("msg", actor=ZOOKEEPER, to=owner, label=label, data={**data, "waiting": waiting})
            self._show()
            self.cond.notify_all()
        self.ctx.emit(
            "metric", actor=owner, label=f"notifications {count}", data={"name": "notifications", "value": count}
        )

    def gone(self, recipe, znode):
        with self.cond:
            self.entries.pop(znode, None)
            self._show()

    # Pacing and counts ------------------------------------------------------------------------
    def _changes(self, znode):
        """A child of the lock is about to be created (znode None) or to go: who will hear of it."""
        with self.cond:
            self.pending |= {c for c, t in self.watch_of.items() if t == self.path or (znode and t == znode)}

    def expiring(self, znode):
        self._changes(znode)

    def acquired(self, recipe):
        with self.cond:
            self.acquisitions += 1
            self.handovers += 1 if recipe.waits else 0
            self.holders.add(recipe.node)
            count = self._count(recipe.owner, "acquired")
        self.ctx.emit(
            "metric", actor=recipe.owner, label=f"acquired {count}", data={"name": "acquired", "value": count}
        )

    def _count(self, client, name):
        """Adds one to a client's counter (under self.cond) and returns it."""
        key = (client, name)
        self.per_client[key] = self.per_client.get(key, 0) + 1
        return self.per_client[key]

    def new_round(self):
        with self.cond:
            self.checked = set()

    def wait_checked(self, count):
        """Until `count` clients of the round have looked at the queue (or GATE_S passed)."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.checked) >= count or self.ctx.cancelled.is_set(), GATE_S)

    def settle(self):
        """Until every client the last change woke has looked at the queue again (or SETTLE_S)."""
        with self.cond:
            self.cond.wait_for(
                lambda: (not self.pending and not self.inflight) or self.ctx.cancelled.is_set(), SETTLE_S
            )

    def counts(self):
        with self.cond:
            return {
                "notifications": self.notifications,
                "child_notifications": self.child_notifications,
                "acquisitions": self.acquisitions,
                "handovers": self.handovers,
                # Woken by a holder's znode going, as against a waiter's (whose session ended).
                "woken_by_releases": sum(n for z, n in self.by_znode.items() if z in self.holders),
                "most_woken_by_one_release": max(self.by_znode.values(), default=0),
            }

    def _show(self):
        queue = sorted(self.entries.values(), key=lambda e: sequence(e["znode"]))
        self.ctx.emit(
            "state",
            actor=ZOOKEEPER,
            label=f"{self.shown}: " + (" ".join(e["znode"] for e in queue) or "empty"),
            data={"type": "zk_queue", "path": self.shown, "queue": [dict(e) for e in queue]},
        )


def client_state(ctx, client, state, token, lock):
    ctx.emit(
        "state",
        actor=client,
        label=f"{client} {state}" + (f" (token {token})" if token is not None else ""),
        data={"type": "client", "client": client, "state": state, "token": token, "lock": lock},
    )


class ZkClient:
    """One client of the lab: its own ZooKeeper session and its own storage connection."""

    def __init__(self, run, name):
        self.run = run
        self.ctx = run.ctx
        self.name = name
        self.zk = KazooClient(hosts=run.hosts + run.root, timeout=SESSION_S)
        self.zk.start(timeout=SESSION_S)
        session = hex(self.zk.client_id[0])
        self.ctx.emit(
            "cmd",
            actor=name,
            to=ZOOKEEPER,
            label=f"connect: session {session}",
            data={"node": ZOOKEEPER, "command": "connect", "result": f"session {session}", "ms": 0},
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
        self.ctx.step()
        if self.pause_at == where:
            self.pause_at = None
            self.paused.set()
        if not self.paused.is_set():
            return
        self.show("paused", self.token)
        self.reached.set()
        while self.paused.is_set() and not self.ctx.cancelled.is_set():
            time.sleep(0.05)
        self.ctx.step()  # raises if the run was stopped meanwhile
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
        self.checkpoint("before-acquire")
        if ahead is not None:
            board.wait_checked(ahead)
        recipe = ZkLockRecipe(
            self.zk, self.run.path, self.name, mode=mode, herd=herd, observer=board, cancelled=ctx.cancelled
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
            ctx.history.ok(op, value)
        elif accepted:
            self.run.count_acknowledged()
            ctx.history.ok(op, {"token": token})
        else:
            ctx.history.fail(op, {"token": token}, error="the storage refused a stale fencing token")
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

    def count_acknowledged(self):
        with self._lock:
            self.acknowledged += 1

    # One round: every client runs its operations in a thread of its own ------------------------
    def round(self, clients, operations=1, modes=None, herd=False, meanwhile=None):
        """Runs the clients' operations; returns the watch notifications the round cost. The
        first operations queue in client order. `meanwhile()` runs in this thread as they go."""
        self.round_size = len(clients)
        self.board.new_round()
        before = self.board.notifications
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
            # A step boundary every quarter second: an instructor's fault or a stop gets through
            # even while every client waits on a watch.
            while alive := [t for t in threads if t.is_alive()]:
                alive[0].join(0.25)
                self.ctx.step()
        finally:
            if any(t.is_alive() for t in threads):  # the run stopped, or this thread failed
                self.ctx.cancel("the run's clients were stopped", status="failed")
                for t in threads:
                    t.join(SESSION_S)
        if errors:
            raise errors[0]
        self.board.settle()
        self.ctx.step()
        return self.board.notifications - before

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


# The scenarios' engines -------------------------------------------------------------------------
def zk_lock(ctx):
    """N clients take the lock in turn, each watching only its predecessor."""
    p = ctx.params
    with ZkRun(ctx, LOCK_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        count = run.round(clients, operations=p["operations"])
        metric_notifications(ctx, PREDECESSOR, len(clients), count)
        return run.result()


def zk_herd(ctx):
    """For 2..N clients, one round of each recipe: the herd's notifications grow with the square."""
    p = ctx.params
    with ZkRun(ctx, LOCK_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        counts = {PREDECESSOR: {}, HERD: {}}
        for k in range(2, len(clients) + 1):
            for series, herd in ((PREDECESSOR, False), (HERD, True)):
                ctx.emit(
                    "phase", actor=ZOOKEEPER, label=f"{k} clients, {series}", data={"clients": k, "series": series}
                )
                counts[series][k] = run.round(clients[:k], herd=herd)
                metric_notifications(ctx, series, k, counts[series][k])
        return run.result(notifications=counts)


def zk_session_expiry(ctx):
    """c1 holds the lock and pauses; its session is expired; c2 takes over; c1 resumes and writes
    with its stale czxid, which the storage refuses."""
    p = ctx.params
    with ZkRun(ctx, LOCK_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        holder, others = clients[0], clients[1:]
        holder.pause_at = "in-section"
        story = {}

        def expire_then_resume(done):
            _wait(ctx, holder.reached)
            token = holder.token
            ctx.emit("log", actor=holder.name, label=f"{holder.name} pauses in its critical section (a GC pause)")
            story["expired"] = ctx.fault("expire", holder.name)
            for other in others:
                _wait(ctx, done[other.name])
            story["stale_token"] = token
            ctx.fault("resume", holder.name)

        run.round(clients, operations=1, meanwhile=expire_then_resume)
        return run.result(**story)


def zk_rwlock(ctx):
    """Readers share the lock, writers take it alone."""
    p = ctx.params
    with ZkRun(ctx, RW_PATH, hold_ms=p["hold_ms"]) as run:
        clients = run.open(p["clients"])
        modes = rw_modes(p["clients"], p["writers"])
        run.round(clients, operations=p["operations"], modes=modes)
        return run.result(modes=modes)


def rw_modes(clients, writers):
    """Which client reads and which writes: the writers spread from the last client back, so the
    queue starts with readers that share the lock."""
    step = max(1, clients // max(1, writers))
    writing = {clients - j * step for j in range(writers) if clients - j * step >= 1}
    return {f"c{i}": WRITE if i in writing else READ for i in range(1, clients + 1)}


def metric_notifications(ctx, series, clients, count):
    ctx.emit(
        "metric",
        actor=ZOOKEEPER,
        label=f"{series}: {count} notifications for {clients} clients",
        data={"name": "watch notifications", "series": series, "x": clients, "y": count, "value": count},
    )


def _wait(ctx, event):
    while not event.wait(0.2):
        ctx.step()


# Invariants of the ZooKeeper scenarios, beside the lab's (apps.locks.checkers) ---------------------
def one_notification_per_handover(ctx, result):
    """Every hand-over took exactly one watch notification: each holder's znode going woke one
    client, as many as hand-overs there were; no znode woke two, and no one watched the parent."""
    if not result:
        return Check(None, "the run ended before any hand-over")
    zk = result["zk"]
    held = (
        zk["woken_by_releases"] == zk["handovers"]
        and zk["most_woken_by_one_release"] <= 1
        and zk["child_notifications"] == 0
    )
    return Check(held, zk)
