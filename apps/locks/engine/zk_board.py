"""The board that watches a ZooKeeper lock's queue and draws it for the page (see Board). Its
counts are the engine's own account; the checkers count from the watches recorded in the history."""

import threading

from .zk_recipe import ZOOKEEPER, Observer, sequence

# How long a client waits for the others to queue, or for a hand-over's notifications to arrive,
# before it goes on anyway (a client paused by an instructor must not hold up the rest for ever).
GATE_S = 5.0
SETTLE_S = 2.0


class Board(Observer):
    """The lock's queue as a run's recipes report it. It records every step as an event, counts the
    watch notifications, and paces each round so that a seed gives the same picture: clients queue
    in order (c1 first), and a new holder starts only once the clients its hand-over woke up have
    looked at the queue again."""

    def __init__(self, ctx, root, path):
        self.ctx = ctx
        self.root = root
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

    def new_round(self, path):
        with self.cond:
            self.checked = set()
            self.path, self.shown = path, self.root + path

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
