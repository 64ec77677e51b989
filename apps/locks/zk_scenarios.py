"""The locks lab's ZooKeeper scenarios (the Lab itself is declared in scenarios.py)."""

from apps.runs.registry import Fault, Invariant, Param, Scenario

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
    ),
]
