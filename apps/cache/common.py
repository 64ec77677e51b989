"""What the cache lab's scenarios share: their parameters and invariants."""

from apps.runs.registry import Fault, Invariant, Param

from . import checkers

NO_STALE_READ = Invariant(
    "no_stale_read",
    "no read returned a version older than one whose write was acknowledged before the read began",
    checkers.no_stale_read,
)
CONVERGENCE = Invariant("convergence", "at the end every cached entry holds its row's version", checkers.convergence)
ACKNOWLEDGED = Invariant(
    "acknowledged_writes", "every write a client was told succeeded is in the items table", checkers.acknowledged_writes
)
INVARIANTS = (NO_STALE_READ, CONVERGENCE, ACKNOWLEDGED)


def _within_ttl(ctx, result):
    return checkers.no_stale_read(ctx, result, bound_ms=ctx.params["ttl_ms"])


# What cache-aside with a TTL promises: a read may be stale, by at most one TTL after the newer
# write (a reader's fill racing a writer's delete leaves the old value until it expires).
STALE_WITHIN_TTL = Invariant(
    "stale_within_ttl",
    "no read returned a version older than one acknowledged more than one TTL before the read began",
    _within_ttl,
)
TTL_BOUNDED = (STALE_WITHIN_TTL, CONVERGENCE, ACKNOWLEDGED)


def params(keys=50, ttl_ms=2000, read_ratio=0.9, clients=3, steps=20, ops=4, zipf=1.1, **extra):
    """The workload's parameters and any of the pattern's own."""
    common = [
        Param("keys", "int", keys, "rows in the items table", min=1, max=100_000),
        Param("ttl_ms", "int", ttl_ms, "how long a cached entry lives, in milliseconds", min=1, max=3_600_000),
        Param("read_ratio", "float", read_ratio, "the share of operations that are reads (0 to 1)", min=0, max=1),
        Param("clients", "int", clients, "clients reading and writing at once", min=1, max=16),
        Param("steps", "int", steps, "steps the clients keep working for", min=1, max=1000),
        Param("ops", "int", ops, "operations each client makes per step", min=1, max=1000),
        Param(
            "zipf", "float", zipf, "the skew of the keys clients pick (0 uniform; above 1 a few hot keys)", min=0, max=4
        ),
    ]
    return (*common, *extra.values())


# A scheduled race reads a stale entry a few milliseconds after it was set; a TTL shorter than that
# would expire it first and hide the race the scenario exists to show.
RACE_TTL_MIN = 100


def race_params(keys=2, ttl_ms=2000, clients=3, steps=6, **extra):
    """The parameters of a scheduled race: the keys raced, the TTL, the readers that keep reading
    and the steps they read for (no workload mix: the schedule is the scenario's own)."""
    common = [
        Param("keys", "int", keys, "keys raced, each with a row of its own", min=1, max=100),
        Param(
            "ttl_ms", "int", ttl_ms, "how long a cached entry lives, in milliseconds", min=RACE_TTL_MIN, max=3_600_000
        ),
        Param("clients", "int", clients, "readers that keep reading after the race", min=1, max=16),
        Param("steps", "int", steps, "steps the readers keep reading for", min=1, max=1000),
    ]
    return (*common, *extra.values())


def node_faults(*nodes: str) -> tuple[Fault, ...]:
    """The buttons of dedicated Redis nodes, pressed between the clients' rounds."""
    return (
        Fault("kill", nodes, "SIGKILL the Redis node: its entries are gone"),
        Fault("restart", nodes, "start the Redis node again, empty"),
        Fault("pause", nodes, "SIGSTOP the Redis node: commands hang until they time out"),
        Fault("resume", nodes, "SIGCONT the paused Redis node"),
    )
