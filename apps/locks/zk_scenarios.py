"""The locks lab's ZooKeeper scenarios (the Lab itself is declared in scenarios.py)."""

from apps.runs.registry import Caption, Fault, Invariant, Param, Scenario

from . import checkers
from .engine import zk

# Each scenario's duration_s is measured with its default parameters at the lab page's default pace.

MOST_CLIENTS = 8
CLIENTS = tuple(f"c{i}" for i in range(1, MOST_CLIENTS + 1))

MUTUAL_EXCLUSION = Invariant(
    "mutual_exclusion",
    "no two accepted critical sections overlap by the storage's clock (reads may overlap reads)",
    checkers.mutual_exclusion,
)
NO_LOST_UPDATE = Invariant(
    "no_lost_update", "the final counter equals the increments the clients were told succeeded", checkers.no_lost_update
)
FENCING = Invariant(
    "fencing_monotonic",
    "the fencing tokens (znode czxids) the storage accepted strictly increase",
    checkers.fencing_monotonic,
)
ONE_NOTIFICATION = Invariant(
    "one_notification_per_handover",
    "each hand-over woke exactly one client: its successor, with one watch notification",
    checkers.one_notification_per_handover,
)
HERD_COSTS = Invariant(
    "herd_notifications",
    "counted from the watches received: one notification per hand-over watching the predecessor, more "
    "watching the parent, and the chart shows those counts",
    checkers.herd_notifications,
)
INVARIANTS = (MUTUAL_EXCLUSION, NO_LOST_UPDATE, FENCING)

FAULTS = (
    Fault(
        "pause",
        CLIENTS,
        "stop the client where it is, like a GC pause; its session stays alive",
        numbered=("c", "clients"),
    ),
    Fault("resume", CLIENTS, "let a paused client go on", numbered=("c", "clients")),
    Fault("expire", CLIENTS, "expire the client's ZooKeeper session: its znode vanishes", numbered=("c", "clients")),
)


def clients(default, least=1):
    return Param("clients", "int", default, "how many clients, each with its own session", min=least, max=MOST_CLIENTS)


def operations(default):
    return Param("operations", "int", default, "critical sections per client", min=1, max=20)


def hold_ms(default):
    return Param("hold_ms", "int", default, "how long a holder stays in its critical section (ms)", min=0, max=2000)


def writers_within_clients(clean):
    if clean["writers"] > clean["clients"]:
        return {"writers": [f"must be at most clients ({clean['clients']})"]}
    return {}


SCENARIOS = [
    Scenario(
        name="zk-lock",
        title="ZooKeeper lock: watch only your predecessor",
        summary="Each client creates an ephemeral sequential znode, lists the children without a watch, "
        "and watches only the znode just before its own: a release wakes exactly one client.",
        engine=zk.zk_lock,
        duration_s=13,
        params=(clients(4), operations(2), hold_ms(0)),
        invariants=(*INVARIANTS, ONE_NOTIFICATION),
        faults=FAULTS,
        watch="Watch the queue of sequential znodes: each client watches only the znode just before its own, "
        "so each release wakes exactly one client.",
        captions=(
            Caption(
                "Each client creates an ephemeral sequential znode under the lock; the lowest one holds it.",
                "op",
                "invoke round",
            ),
            Caption(
                "This client's znode is not the lowest: it watches its predecessor's znode and waits.",
                "state",
                "waiting",
                data={"type": "client"},
            ),
            Caption(
                "The predecessor's znode was deleted: ZooKeeper notifies the one client that watched it.",
                "msg",
                "watch fired",
                data={"type": "watch", "event": "DELETED"},
            ),
            Caption(
                "Its znode is now the lowest: the client holds the lock, with the znode's czxid as fencing token.",
                "state",
                "holding",
                data={"type": "client"},
            ),
            Caption(
                "Every znode is gone: the lock is free and the run leaves nothing behind.",
                "state",
                ": empty",
                data={"type": "zk_queue"},
            ),
            Caption(
                "Each hand-over woke exactly its successor, with one notification.",
                "check",
                "one_notification_per_handover: held",
            ),
        ),
    ),
    Scenario(
        name="zk-herd",
        title="ZooKeeper lock: the herd effect",
        summary="The naive recipe watches the lock's parent: every child created or deleted wakes every "
        "waiter. For 2 to N clients, one round with each recipe, the chart counts the notifications: "
        "N - 1 when each waiter watches its predecessor, about N² when all "
        "watch the parent. The herd is safe, but costly.",
        engine=zk.zk_herd,
        duration_s=45,
        params=(clients(5, least=2), hold_ms(0)),
        invariants=(*INVARIANTS, HERD_COSTS),
        faults=FAULTS,
        watch="Watch the notifications chart: for each number of clients, one round watches the predecessor "
        "(N - 1 notifications) and one watches the parent, where every change wakes every waiter.",
        captions=(
            Caption(
                "A round with the recipe: each waiter watches only its predecessor.",
                "phase",
                "watch the predecessor",
                data={"herd": False},
            ),
            Caption(
                "A round with the naive recipe: every waiter watches the lock's parent.",
                "phase",
                "watch the parent",
                data={"herd": True},
            ),
            Caption(
                "The predecessor's znode is gone: only its successor is notified.",
                "msg",
                "watch fired",
                data={"type": "watch", "event": "DELETED"},
            ),
            Caption(
                "A child of the parent changed: every waiter is woken, though only one can take the lock.",
                "msg",
                "children changed",
                data={"type": "watch", "event": "CHILD"},
            ),
            Caption(
                "The recipe's round goes on the chart: one notification per hand-over.",
                "metric",
                "watch the predecessor:",
            ),
            Caption(
                "The herd's round goes on the chart: its notifications grow about as the square of the clients.",
                "metric",
                "watch the parent (herd):",
            ),
            Caption(
                "The chart shows what the watches really received: both recipes are safe, but the herd costs far more.",
                "check",
                "herd_notifications: held",
            ),
        ),
    ),
    Scenario(
        name="zk-session-expiry",
        title="ZooKeeper lock: the holder's session expires",
        summary="c1 holds the lock and pauses; its session expires, its znode vanishes and c2 takes the lock. "
        "c1 resumes and writes with its znode's czxid as fencing token: the storage refuses it.",
        engine=zk.zk_session_expiry,
        duration_s=6,
        params=(clients(3, least=2), hold_ms(0)),
        invariants=INVARIANTS,
        faults=FAULTS,
        watch="Watch c1: it holds the lock and pauses; its session expires, its znode vanishes and c2 takes "
        "the lock, then c1 wakes and tries to write with its old czxid.",
        captions=(
            Caption(
                "c1 pauses inside its critical section, like a GC pause, still sure it holds the lock.",
                "log",
                "c1 pauses",
            ),
            Caption("c1's session expires: the server deletes its ephemeral znode.", "fault", "expire c1"),
            Caption(
                "c2's znode is now the lowest: it holds the lock, with a larger czxid as its token.",
                "state",
                "holding",
                actor="c2",
                data={"type": "client"},
            ),
            Caption("c1 resumes, unaware that its session has expired.", "fault", "resume c1"),
            Caption(
                "The storage refuses c1's write: its token is older than one it has already accepted.",
                "log",
                "rejects c1's write",
            ),
            Caption("c1 finds its znode already gone: it lost the lock while it was paused.", "log", "already gone"),
            Caption(
                "The accepted tokens only grew, and c1's stale write was refused.",
                "check",
                "fencing_monotonic: held",
            ),
        ),
    ),
    Scenario(
        name="zk-rwlock",
        title="ZooKeeper read/write lock",
        summary="Readers wait only for earlier writers and share the lock; a writer waits for everyone "
        "before it. Read sections overlap, write sections stand alone.",
        engine=zk.zk_rwlock,
        duration_s=16,
        params=(
            clients(5),
            Param("writers", "int", 2, "how many of the clients write (the others read)", min=1, max=MOST_CLIENTS),
            operations(2),
            hold_ms(100),
        ),
        invariants=INVARIANTS,
        faults=FAULTS,
        cross_check=writers_within_clients,
        watch="Watch the critical sections: readers' sections overlap each other, a writer's stands alone, and "
        "each client waits only for the earlier znodes that conflict with it.",
        captions=(
            Caption(
                "A reader enters: readers wait only for earlier writers, so several can be inside at once.",
                "state",
                "enters",
                data={"type": "cs", "mode": "read"},
            ),
            Caption(
                "A writer enters alone: it waited for every znode before its own, readers and writers.",
                "state",
                "enters",
                data={"type": "cs", "mode": "write"},
            ),
            Caption(
                "A znode this client waited on is gone: ZooKeeper notifies the client watching it.",
                "msg",
                "watch fired",
                data={"type": "watch", "event": "DELETED"},
            ),
            Caption(
                "No write overlapped another section; only reads overlapped reads.",
                "check",
                "mutual_exclusion: held",
            ),
            Caption("The writers' fencing tokens only grew.", "check", "fencing_monotonic: held"),
        ),
    ),
]
