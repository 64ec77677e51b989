from apps.runs.registry import Assets, Caption, Fault, Invariant, Lab, Param, Scenario, register

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
        watch="Watch the critical sections on the storage's timeline: with no lock, every client reads the "
        "counter before any of them writes, so their sections overlap and increments vanish.",
        captions=(
            Caption(
                "A client enters its critical section; with no lock, nothing keeps the others out.", "state", "enters"
            ),
            Caption(
                "It reads the counter; another client may read the same value before this one writes.",
                "cmd",
                "SELECT value, version FROM counter",
            ),
            Caption(
                "It writes back what it read plus one, overwriting any increment made since its read.",
                "cmd",
                "UPDATE counter SET value",
            ),
            Caption(
                "The checker found sections that overlap by the storage's own clock: two clients were inside at once.",
                "check",
                "mutual_exclusion: BROKEN",
            ),
            Caption(
                "The counter is below the increments acknowledged: the overlapping read-modify-writes lost updates.",
                "check",
                "no_lost_update: BROKEN",
            ),
        ),
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
        watch="Watch the UPDATE ... AND version = N commands: when another client wrote since the read, the update "
        "matches no row, and the client counts a conflict and starts again from a fresh read.",
        captions=(
            Caption(
                "The client reads the counter together with its version.", "cmd", "SELECT value, version FROM counter"
            ),
            Caption(
                "The version was unchanged since the read: the write went through and bumped the version.",
                "cmd",
                "AND version =",
                data={"result": "1 affected"},
            ),
            Caption(
                "No row matched: another client wrote since this one's read, so the stale write changed nothing.",
                "cmd",
                "AND version =",
                data={"result": "0 affected"},
            ),
            Caption(
                "After the conflict the client retries from a fresh read: nothing waits, and nothing is lost.",
                "state",
                "acquiring",
                data={"type": "client", "conflict": True},
            ),
            Caption(
                "Every acknowledged increment is in the counter: the version check lost none.",
                "check",
                "no_lost_update: held",
            ),
        ),
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
        watch="Watch the lock waits: while one client holds row 1 with SELECT ... FOR UPDATE inside its "
        "transaction, the others wait on InnoDB's row lock until it commits.",
        captions=(
            Caption("The client opens a transaction: the row lock it takes lives until COMMIT.", "cmd", "BEGIN"),
            Caption(
                "The row is locked by another transaction: the NOWAIT probe fails, and the client waits its turn.",
                "cmd",
                "FOR UPDATE NOWAIT",
                data={"ok": False},
            ),
            Caption(
                "InnoDB's lock queue: the waiting clients are blocked behind the holder of the row.",
                "state",
                "waits for",
                data={"type": "innodb_waits"},
            ),
            Caption(
                "The client holds the row lock: until it commits, no other client can lock the row.",
                "state",
                "holding",
                data={"type": "client"},
            ),
            Caption("COMMIT releases the row lock, and the next waiting client gets it.", "cmd", "COMMIT"),
            Caption(
                "No two critical sections overlapped: the row lock kept the clients apart.",
                "check",
                "mutual_exclusion: held",
            ),
            Caption("The counter equals the acknowledged increments.", "check", "no_lost_update: held"),
        ),
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
        watch="Watch the charts fill a point per batch: throughput, latency and retries or lock waits per "
        "increment of each scheme, as clients are added on one hot row and then on several.",
        captions=(
            Caption(
                "An optimistic batch: versioned UPDATEs that retry when another client wrote first.",
                "phase",
                "optimistic:",
            ),
            Caption(
                "A pessimistic batch: the same increments under SELECT ... FOR UPDATE, waiting instead of retrying.",
                "phase",
                "pessimistic:",
            ),
            Caption(
                "The batch's retries or lock waits per increment go on the contention chart.",
                "metric",
                "retries or lock waits per op",
            ),
            Caption(
                "The sweep starts over with the writes spread across 4 hot rows: fewer clients collide on each row.",
                "metric",
                "throughput (ops/s) optimistic, 4 hot rows at 1 clients",
            ),
            Caption(
                "However hard they contended, both schemes lost no increment.",
                "check",
                "no_lost_update: held",
            ),
        ),
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
        watch="Watch the wait-for graph: c1 holds row 1 and wants row 2 while c2 holds row 2 and wants row 1, "
        "until InnoDB breaks the cycle by rolling one of them back.",
        captions=(
            Caption(
                "Each client waits for a row the other holds: a cycle that no amount of waiting ends.",
                "state",
                "c1 waits for c2 (row 2), c2 waits for c1 (row 1)",
            ),
            Caption(
                "InnoDB found the cycle in its wait-for graph and rolled the victim back with error 1213.",
                "state",
                "deadlock:",
                data={"type": "wait_for"},
            ),
            Caption(
                "The victim lost its locks and its uncommitted work; it will run the whole transaction again.",
                "state",
                "idle",
                data={"type": "client", "lock": "rolled back by InnoDB (1213)"},
            ),
            Caption(
                "The survivor commits and releases both rows, so the victim's retry can go through.", "cmd", "COMMIT"
            ),
            Caption(
                "Nothing was lost to the deadlocks: every victim's increments were redone.",
                "check",
                "no_lost_update: held",
            ),
        ),
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
        watch="Watch the lease key on the Redis node: one client at a time holds it (SET NX PX), the others "
        "retry until the holder deletes it with a compare-and-delete.",
        captions=(
            Caption(
                "The key exists, so this client's SET NX failed: it waits and tries again.",
                "state",
                "waiting",
                data={"type": "client"},
            ),
            Caption(
                "SET NX succeeded: this client holds the lease until it deletes it or the TTL runs out.",
                "state",
                "holding",
                data={"type": "client"},
            ),
            Caption(
                "The holder deletes the key only if it still holds its own token, so it never releases another's lease.",
                "cmd",
                "compare-and-delete",
                data={"result": 1},
            ),
            Caption("The lease is free: the next SET NX wins it.", "state", ": free", data={"type": "lease"}),
            Caption(
                "No two critical sections overlapped: no holder paused longer than the TTL.",
                "check",
                "mutual_exclusion: held",
            ),
        ),
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
        watch="Watch c1: it takes the lease, reads the counter and pauses for longer than the TTL; the key "
        "expires under it, c2 gets in, and c1 later writes as if it still held the lease.",
        captions=(
            Caption(
                "c1 stops mid-section (a GC pause) holding a value it has read, while its lease's TTL runs out.",
                "log",
                "c1 pauses",
            ),
            Caption(
                "The TTL ran out during c1's pause: the key expired and c2's SET NX won it.",
                "state",
                "c2 holds it",
                data={"type": "lease"},
            ),
            Caption("c2 enters the critical section while c1, paused, is still inside it.", "state", "c2 enters"),
            Caption(
                "c1 resumes and writes the value it computed before the pause, overwriting c2's increment.",
                "cmd",
                "UPDATE counter SET value",
                actor="c1",
            ),
            Caption(
                "c1's release finds the key gone: its lease had expired, yet nothing stopped its write.",
                "log",
                "the release deletes nothing",
            ),
            Caption(
                "The checker sees c1's and c2's critical sections overlap by the storage's clock.",
                "check",
                "mutual_exclusion: BROKEN",
            ),
            Caption(
                "An acknowledged increment is lost: c1's stale write replaced c2's.", "check", "no_lost_update: BROKEN"
            ),
        ),
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
        watch="Watch the fencing tokens: c1's lease carries token 1 and c2's token 2, so when c1 wakes from its "
        "pause and writes with token 1, the storage has already seen 2 and refuses it.",
        captions=(
            Caption(
                "c1 takes the lease and, in the same script, fencing token 1 from a counter that only grows.",
                "cmd",
                "<acquire-fenced>",
                data={"result": 1},
            ),
            Caption("c1 pauses past its TTL, holding token 1.", "log", "c1 pauses"),
            Caption(
                "The lease expired during the pause; c2 holds it now, with the larger token 2.",
                "state",
                "c2 holds it, token 2",
            ),
            Caption(
                "The storage accepts c2's write: token 2 is above every token it has seen.",
                "cmd",
                "last_token = 2",
                actor="c2",
            ),
            Caption(
                "c1's write carries token 1, older than the 2 the storage has seen, and is rejected.",
                "log",
                "rejects c1's write",
            ),
            Caption(
                "The accepted tokens only grew: fencing turned c1's stale write into a refused one.",
                "check",
                "fencing_monotonic: held",
            ),
            Caption("No increment was lost: the counter holds c2's write.", "check", "no_lost_update: held"),
        ),
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
        watch="Watch the votes each client collects from the five Redis nodes: 3 make a majority. The run "
        "kills two nodes, and the lock still works; then a third, and every attempt is refused.",
        captions=(
            Caption("All five nodes are up: a client needs 3 of them to hold the lock.", "phase", "5 of 5 nodes up"),
            Caption(
                "A majority accepted the token within the validity time: this client holds the lock.",
                "log",
                "holds the lock",
                data={"type": "redlock", "granted": True},
            ),
            Caption(
                "Fewer than 3 nodes accepted the token: the client releases the votes it got and retries.",
                "log",
                "is refused",
                data={"type": "redlock", "granted": False},
            ),
            Caption(
                "Two nodes are down: the three left are still a majority, so the lock can still be granted.",
                "phase",
                "3 of 5 nodes up",
            ),
            Caption(
                "A third node is down: no client can gather 3 votes, and every attempt is refused.",
                "phase",
                "2 of 5 nodes up",
            ),
            Caption("The killed nodes start again, empty: they kept nothing on disk.", "fault", "restart"),
            Caption(
                "Every grant had a majority of the five nodes, and no attempt without one was granted.",
                "check",
                "redlock_majority: held",
            ),
        ),
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
        watch="Watch redis3: c1 holds the lock on redis1 to redis3; redis3 restarts and forgets the key, and c2 "
        "wins redis3, redis4 and redis5 while c1's lock is still valid.",
        captions=(
            Caption(
                "redis4 and redis5 are killed, so c1 can reach only redis1, redis2 and redis3.", "fault", "kill redis4"
            ),
            Caption(
                "c1 holds the lock with exactly 3 votes: redis1, redis2 and redis3.",
                "log",
                "holds the lock",
                actor="c1",
            ),
            Caption(
                "redis3 restarts; it kept the key only in memory, so it has forgotten c1's lock.",
                "fault",
                "restart redis3",
            ),
            Caption(
                "c2 wins redis3, redis4 and redis5, a majority, while c1's validity has not run out.",
                "log",
                "holds the lock",
                actor="c2",
            ),
            Caption(
                "Two clients hold the lock at once, though each node followed the algorithm.",
                "log",
                "while c1 holds it",
            ),
            Caption("c1 and c2 were inside the critical section at once.", "check", "mutual_exclusion: BROKEN"),
            Caption(
                "c1's write, computed before c2's, overwrote it: an increment is lost.",
                "check",
                "no_lost_update: BROKEN",
            ),
        ),
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
