from apps.runs.registry import Assets, Fault, Invariant, Lab, Param, Scenario, register

from . import checkers, zk_scenarios
from .engine import db, leases

MUTUAL_EXCLUSION = Invariant(
    "mutual_exclusion",
    "no two accepted critical sections overlap, by the storage server's own clock",
    checkers.mutual_exclusion,
)
NO_LOST_UPDATE = Invariant(
    "no_lost_update", "the final counter equals the increments the clients were told succeeded", checkers.no_lost_update
)
REDLOCK_MAJORITY = Invariant(
    "redlock_majority",
    "the lock is granted while a majority of the Redis nodes is up, and refused when it is not",
    checkers.redlock_majority,
)
FENCING = Invariant(
    "fencing_monotonic", "the fencing tokens the storage accepted are strictly increasing", checkers.fencing_monotonic
)


def clients_param(default=3, most=16):
    return Param("clients", "int", default, "how many clients contend", min=1, max=most)


def operations_param(default=10, most=1000):
    return Param("operations", "int", default, "increments each client makes", min=1, max=most)


def rows_params(rows=1, hot_rows=1):
    return (
        Param("rows", "int", rows, "rows of the counter table", min=1, max=1000),
        Param("hot_rows", "int", hot_rows, "the rows clients write, picked among the first ones", min=1, max=1000),
    )


def think_param(default=2):
    return Param("think_ms", "int", default, "time a client spends between reading and writing", min=0, max=5000)


def ttl_param(default):
    return Param("ttl_ms", "int", default, "the lease's time to live", min=1, max=600_000)


def pause_param(default):
    return Param("pause_ms", "int", default, "how long c1 pauses while holding", min=1, max=60_000)


def pause_past_ttl(clean):
    """The pause must outlast the lease, or there is nothing to show."""
    if clean["pause_ms"] <= clean["ttl_ms"]:
        return {
            "pause_ms": [f"must be longer than ttl_ms ({clean['ttl_ms']}) for the lease to expire during the pause"]
        }
    return {}


def with_fencing(engine, fencing):
    def run(ctx):
        ctx.params = {**ctx.params, "fencing": fencing}
        return engine(ctx)

    run.__name__ = f"{engine.__name__}{'_fenced' if fencing else ''}"
    return run


def hot_rows_within_rows(clean):
    """More hot rows than rows cannot be: a field error on hot_rows."""
    if "hot_rows" in clean and "rows" in clean and clean["hot_rows"] > clean["rows"]:
        return {
            "hot_rows": [f"more hot rows ({clean['hot_rows']}) than rows ({clean['rows']}): at most {clean['rows']}"]
        }
    return {}


def pause_faults(count, numbered=None):
    """Pause and resume for clients c1 … c<count>, or for as many as the run's `numbered` parameter."""
    targets = tuple(f"c{i}" for i in range(1, count + 1))
    per = ("c", numbered) if numbered else None
    return (
        Fault("pause", targets, "stop the client where it is, holding what it holds, like a GC pause", numbered=per),
        Fault("resume", targets, "let the paused client go on", numbered=per),
    )


CLIENT_FAULTS = pause_faults(16, numbered="clients")
REDIS_NODES = tuple(f"redis{i}" for i in range(1, 6))
REDLOCK_FAULTS = (
    Fault("kill", REDIS_NODES, "SIGKILL the Redis node"),
    Fault("restart", REDIS_NODES, "start it again (it kept nothing on disk: the keys are gone)"),
)
REDLOCK_CLUSTER = {"redis": 5, "mariadb": 1}

SCENARIOS = [
    Scenario(
        name="lost-update",
        title="Read-modify-write with no lock",
        summary="Each client reads the counter, adds one and writes it back, with nothing to keep the others "
        "out. On the first round everyone reads before anyone writes: increments are lost, and the critical "
        "sections overlap.",
        engine=db.lost_update,
        duration_s=8,
        params=(clients_param(3), operations_param(5), *rows_params(), think_param(5)),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        expected="fail",
        faults=CLIENT_FAULTS,
        cross_check=hot_rows_within_rows,
    ),
    Scenario(
        name="optimistic",
        title="Optimistic locking with a version column",
        summary="Each client reads the value and its version and writes with UPDATE ... WHERE id=%s AND "
        "version=%s: if someone wrote in between, no row matches, and the client counts a conflict and "
        "retries from the read. Nothing waits, nothing is lost.",
        engine=db.optimistic,
        duration_s=15,
        params=(clients_param(3), operations_param(10), *rows_params(), think_param(2)),
        invariants=(NO_LOST_UPDATE,),
        faults=CLIENT_FAULTS,
        cross_check=hot_rows_within_rows,
    ),
    Scenario(
        name="pessimistic",
        title="Pessimistic locking with SELECT ... FOR UPDATE",
        summary="Each client opens a transaction and locks the row with SELECT ... FOR UPDATE before its "
        "read-modify-write; the others wait on InnoDB's row lock until it commits. The lock only lives "
        "inside a transaction: under autocommit MariaDB releases it as soon as the SELECT ends, so "
        "it protects nothing (turn `transaction` off to see it).",
        engine=db.pessimistic,
        duration_s=12,
        params=(
            clients_param(3),
            operations_param(8),
            *rows_params(),
            think_param(5),
            Param("transaction", "bool", True, "lock inside BEGIN ... COMMIT (off: autocommit)"),
        ),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        faults=CLIENT_FAULTS,
        cross_check=hot_rows_within_rows,
    ),
    Scenario(
        name="optimistic-vs-pessimistic",
        title="Optimistic against pessimistic, as contention grows",
        summary="The same increments under both schemes, for 1 to `clients` clients on 1 or `hot_rows` hot "
        "rows: throughput, latency, and retries (optimistic) or lock waits (pessimistic) per operation, "
        "charted against the number of clients.",
        engine=db.contention_sweep,
        duration_s=12,
        params=(clients_param(4, most=16), operations_param(20, most=500), *rows_params(4, 4), think_param(1)),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        cross_check=hot_rows_within_rows,
    ),
    Scenario(
        name="deadlock",
        title="A deadlock, and InnoDB's way out",
        summary="c1 locks row 1 then row 2; c2 locks row 2 then row 1. Each holds what the other wants: "
        "InnoDB finds the cycle in its wait-for graph, rolls one transaction back with error 1213, and "
        "the victim retries once the other has committed.",
        engine=db.deadlock,
        duration_s=6,
        params=(operations_param(4, most=20),),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        faults=pause_faults(2),
    ),
    Scenario(
        name="redis-lease",
        title="A Redis lease",
        summary="Clients take turns through a lease on one Redis key: SET key token NX PX ttl to acquire, and "
        "a Lua compare-and-delete to release, so nobody deletes a lease that is no longer theirs. "
        "While no one pauses longer than the TTL, only one client is ever inside.",
        engine=with_fencing(leases.redis_lease, False),
        duration_s=8,
        params=(clients_param(3), operations_param(5), ttl_param(2000), think_param(5)),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        faults=CLIENT_FAULTS,
    ),
    Scenario(
        name="redis-lease-pause",
        title="A lease holder paused past its TTL",
        summary="c1 holds the lease and has read the counter when it pauses (a GC pause) for longer than the "
        "TTL. The key expires, c2 acquires it and writes; c1 resumes, still believing it holds the lease, "
        "and writes its stale value. No fencing: two clients were inside at once and an update is lost.",
        engine=with_fencing(leases.redis_lease_pause, False),
        duration_s=10,
        # A TTL of 4 s keeps c2 waiting, then holding, until about 6 s into the run at the page's
        # pace: long enough to press its buttons.
        params=(ttl_param(4000), pause_param(7000)),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        expected="fail",
        faults=pause_faults(2),
        cross_check=pause_past_ttl,
    ),
    Scenario(
        name="redis-lease-fencing",
        title="The same pause, with fencing tokens",
        summary="The same schedule, but each acquire hands out a token from a counter that only grows (INCR, "
        "in the same script as the SET), and the storage accepts a write only with a token above the last "
        "one it saw: c1's write after its pause carries an older token than c2's and is rejected.",
        engine=with_fencing(leases.redis_lease_pause, True),
        duration_s=10,
        # A TTL of 4 s keeps c2 waiting, then holding, until about 6 s into the run at the page's
        # pace: long enough to press its buttons.
        params=(ttl_param(4000), pause_param(7000)),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE, FENCING),
        faults=pause_faults(2),
        cross_check=pause_past_ttl,
    ),
    Scenario(
        name="redlock",
        title="Redlock over five Redis nodes",
        summary="Five Redis servers of the run's own. A client holds the lock when a majority (3) accepted its "
        "token within the validity time: the TTL minus the time the round took minus the clock drift. With "
        "two nodes killed it still gets the lock; with three killed every attempt is refused.",
        engine=leases.redlock_majority,
        duration_s=7,
        params=(
            clients_param(2, most=4),
            operations_param(2, most=20),
            Param("attempts", "int", 3, "tries per increment before giving up", min=1, max=20),
            ttl_param(2000),
            think_param(5),
        ),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE, REDLOCK_MAJORITY),
        cluster=REDLOCK_CLUSTER,
        faults=(*REDLOCK_FAULTS, *pause_faults(4, numbered="clients")),
    ),
    Scenario(
        name="redlock-restart",
        title="Redlock and a node restarted without persistence",
        summary="c1 holds the lock on redis1..redis3 (redis4 and redis5 were down). They come back, and redis3 "
        "restarts: it kept the key only in memory and forgets it. c2 asks and gets redis3, redis4 and redis5, "
        "a majority, while c1's validity has not run out: two clients hold the lock, and c1's write loses c2's.",
        engine=leases.redlock_restart,
        duration_s=5,
        params=(ttl_param(10_000),),
        invariants=(MUTUAL_EXCLUSION, NO_LOST_UPDATE),
        expected="fail",
        cluster=REDLOCK_CLUSTER,
        faults=REDLOCK_FAULTS,
    ),
]

LAB = register(
    Lab(
        name="locks",
        title="Distributed locks",
        explanation=(
            "Which locks keep two clients out of a critical section, and which only seem to: database "
            "locks, Redis leases, Redlock and ZooKeeper recipes. Clients contend for a counter kept in "
            "MariaDB, and every critical section is logged with "
            "the storage server's own clock, so a checker can see whether two clients were ever inside "
            "at once and whether an increment was lost. Database locks come first: none at all, "
            "optimistic (a version column), pessimistic (SELECT ... FOR UPDATE) and the deadlock "
            "InnoDB breaks. Then leases: a Redis key with a TTL is only safe while its holder is not "
            "paused past the TTL, which fencing tokens fix at the storage; Redlock spreads the lease "
            "over five Redis nodes and a restarted node that forgot the key lets two clients in. "
            "ZooKeeper's recipes queue clients as sequential znodes that each watch their predecessor."
        ),
        scenarios=[*SCENARIOS, *zk_scenarios.SCENARIOS],
        run_page=Assets(css=("locks/css/locks.css",), js=("locks/js/locks.js",)),
    )
)
