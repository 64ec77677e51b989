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

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, LockTimeout, NoNodeError, SessionExpiredError
from kazoo.protocol.states import WatchedEvent, ZnodeStat

from apps.runs.engine_api import Emit, History, cmd

ZOOKEEPER = "zookeeper"
WRITE, READ = "write", "read"
NODE_NAMES = {WRITE: "__lock__", READ: "__rlock__"}
CONTENDER = re.compile(r"(__lock__|__rlock__)(\d{10})$")
# How often a waiter looks up from its watch to see whether the run was stopped.
POLL_S = 0.25
# The history's name for a watch notification a client's kazoo watcher received (see record_watch).
WATCH_OP = "watch"


class LockLost(Exception):
    """Our znode is gone while we waited (our session expired): we are no longer in the queue."""


class LockCancelled(Exception):
    """The run stopped while we waited."""


def contenders(children: list[str]) -> list[tuple[int, str, str]]:
    """The lock's queue from a list of children: [(sequence, znode, mode)] in sequence order."""
    queue = []
    for child in children:
        m = CONTENDER.search(child)
        if m:
            queue.append((int(m.group(2)), child, READ if m.group(1) == NODE_NAMES[READ] else WRITE))
    return sorted(queue)


def sequence(znode: str) -> int:
    return int(CONTENDER.search(znode).group(2))


def owner_of(znode: str) -> str:
    """c2__lock__0000000003 -> c2 (kazoo's own contenders have a uuid there)."""
    return znode.split("__", 1)[0] or "?"


def describe(result: Any) -> str:
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


def record_watch(history: History, client: str, zk: KazooClient, event: WatchedEvent) -> None:
    """Records in the run's history a watch notification exactly as kazoo delivered it to `client`:
    the path, the event type (DELETED, CHILD, or NONE when the session ended) and the session it
    came on. The checkers count hand-overs and herds from these records, not from the engine's
    counters."""
    session = hex(zk.client_id[0]) if zk.client_id else None
    seen = {"path": event.path, "type": event.type, "state": event.state, "session": session}
    history.ok(history.invoke(client, WATCH_OP, {"path": event.path, "session": session}), seen)


class Observer:
    """What a recipe reports about each step, besides its commands. This one tells no one (a
    benchmark, kazoo parity)."""

    def changing(self, recipe: ZkLockRecipe, znode: str | None) -> None:
        """Just before a create (znode None) or a delete of `znode` under the lock's path."""

    def created(self, recipe: ZkLockRecipe) -> None:
        pass

    def watching(self, recipe: ZkLockRecipe, target: str | None) -> None:
        """After a check: `target` is the znode or path watched, or None when the lock is ours."""

    def notified(self, recipe: ZkLockRecipe, event: WatchedEvent, waiting: bool) -> None:
        """A watch fired (in kazoo's event thread); `waiting` says whether the recipe was waiting."""

    def gone(self, recipe: ZkLockRecipe, znode: str) -> None:
        """Our znode was deleted, or found missing."""


SILENT = Observer()


class ZkLockRecipe:
    """One contender for the lock at `path` on the session `zk` (a started KazooClient).

    With `emit`, every ZooKeeper command is a `cmd` event; with `history`, every watch
    notification received is recorded there. With neither (a benchmark) it only calls kazoo."""

    def __init__(
        self,
        zk: KazooClient,
        path: str,
        owner: str,
        *,
        mode: str = WRITE,
        herd: bool = False,
        observer: Observer | None = None,
        cancelled: threading.Event | None = None,
        emit: Emit | None = None,
        history: History | None = None,
    ):
        if mode not in NODE_NAMES:
            raise ValueError(f"a lock's mode is {WRITE} or {READ}, not {mode!r}")
        self.zk = zk
        self.path = path.rstrip("/")
        self.owner = owner
        self.mode = mode
        self.herd = herd
        self.observer = observer or SILENT
        self.cancelled = cancelled or threading.Event()
        self.emit = emit
        self.history = history
        self.node: str | None = None
        self.token: int | None = None
        self.watches: str | None = None
        self.waits = 0  # how many times the last acquire() waited for a watch
        self._wake = threading.Event()
        self._waiting = False

    # The recipe -------------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> int:
        """Queues and waits for the lock; returns the fencing token (our znode's czxid). Raises
        kazoo's LockTimeout after `timeout` seconds, LockLost when our session expires meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        prefix = f"{self.path}/{self.owner}{NODE_NAMES[self.mode]}"
        self.waits = 0
        self.observer.changing(self, None)
        try:
            created, stat = self._call(
                f"create -e -s {prefix}",
                lambda: self.zk.create(prefix, b"", ephemeral=True, sequence=True, makepath=True, include_data=True),
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

    def _wait_for_turn(self, deadline: float | None) -> int:
        while True:
            self._wake.clear()
            if self.herd:
                children = self._call(
                    f"get_children {self.path} watch", lambda: self.zk.get_children(self.path, watch=self._on_watch)
                )
            else:
                children = self._call(f"get_children {self.path}", lambda: self.zk.get_children(self.path))
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
                found = self._call(f"exists {watched} watch", partial(self.zk.exists, watched, watch=self._on_watch))
                if found is None:
                    continue  # gone between the two calls: look again
            self.watches = target
            self.waits += 1
            self._waiting = True
            self.observer.watching(self, target)
            try:
                self._sleep(deadline)
            finally:
                self._waiting = False

    def blocker(self, queue: list[tuple[int, str, str]]) -> str | None:
        """The znode we wait for: the last one before ours that excludes us (any for a writer, a
        writer's for a reader), or None when the lock is ours."""
        mine = sequence(self.node)
        earlier = [z for seq, z, mode in queue if seq < mine and (self.mode == WRITE or mode == WRITE)]
        return earlier[-1] if earlier else None

    def release(self) -> bool:
        """Deletes our znode; False when it was already gone (our session expired under us)."""
        if self.node is None:
            return False
        node, self.node = self.node, None
        self.observer.changing(self, node)
        try:
            self._call(f"delete {self.path}/{node}", lambda: self.zk.delete(f"{self.path}/{node}"))
            return True
        except (NoNodeError, SessionExpiredError, ConnectionLoss):
            return False
        finally:
            self.observer.gone(self, node)

    # Waiting ----------------------------------------------------------------------------------
    def _sleep(self, deadline: float | None) -> None:
        while not self._wake.is_set():
            if self.cancelled.is_set():
                raise LockCancelled(f"{self.owner} stopped waiting: the run is over")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise LockTimeout(f"{self.owner} did not get {self.path} in time")
            self._wake.wait(POLL_S if remaining is None else min(POLL_S, remaining))

    def _on_watch(self, event: WatchedEvent) -> None:
        # What ZooKeeper sent is recorded first, before the engine's own account of it.
        if self.history is not None:
            record_watch(self.history, self.owner, self.zk, event)
        self.observer.notified(self, event, self._waiting)
        self._wake.set()

    def _on_session(self, state: str) -> None:
        if state == KazooState.LOST:
            self._wake.set()  # our znode went with the session: look again, and find it gone

    def _call(self, command: str, call: Callable[[], Any]) -> Any:
        if self.emit is None:
            return call()
        return cmd(self.emit, self.owner, ZOOKEEPER, command, call, summary=describe)
