"""Cache-aside's races and their cures, scheduled step by step on the shared MariaDB and Redis."""

from apps.runs.registry import PAGE_SPEED, Invariant, Param, Scenario

from . import checkers, common
from .engine import races


def _side(side: str, check):
    def judge(ctx, result):
        return check(ctx, result, keys=races.sides(ctx.params["keys"])[side])

    return judge


SIDE_INVARIANTS = tuple(
    Invariant(f"{side}_side_{name}", f"the {side} side's keys: {description}", _side(side, check))
    for side in ("update", "delete")
    for name, description, check in (
        (
            "no_stale_read",
            "no read returned a version older than one whose write was acknowledged before the read began",
            checkers.no_stale_read,
        ),
        ("convergence", "at the end every cached entry holds its row's version", checkers.convergence),
    )
)


def _two_keys_at_least(clean):
    if clean["keys"] < 2:
        return {"keys": ["must be at least 2: half the keys update the cache, the other half delete it"]}
    return {}


READER_MS = Param(
    "reader_ms",
    "int",
    300,
    "the reader's read-plus-set time, in milliseconds: it read the row just before the write and sets "
    "the cache this long after the writer's first delete",
    min=20,
    max=5000,
)
# Longer than a holder takes from its miss to its fill at the page's pace (three steps), so the
# token is still out when the writer's delete comes and the waiting readers keep waiting for it.
LEASE_MS = Param(
    "lease_ms",
    "int",
    3000,
    "how long a lease token is out at most: while it is, other readers that miss wait and retry",
    min=10,
    max=60_000,
)
ROUNDS = Param(
    "steps",
    "int",
    3,
    "rounds of the race: two writes on every key, then every reader reads each key",
    min=1,
    max=1000,
)
TTL_ONLY = tuple(p for p in common.race_params() if p.name == "ttl_ms")

SCENARIOS = (
    Scenario(
        name="stale-set-race",
        title="The stale set: a reader's fill after a writer's delete",
        summary=(
            "A reader misses and reads the row (v1); a writer commits v2 and deletes the cache entry; "
            "then the reader sets the v1 it read. The delete came too early: the cache now serves v1, "
            "and every other reader is served it until the TTL runs out. The checker, holding each "
            "read to the writes acknowledged before it began, names the key, the stale reads and how "
            "long the stale window lasted."
        ),
        engine=races.stale_set_race,
        params=common.race_params(keys=2, ttl_ms=2000, clients=3, steps=6),
        invariants=(common.NO_STALE_READ, common.CONVERGENCE, common.ACKNOWLEDGED),
        expected="fail",
        duration_s=lambda p: (4 * p["keys"] + p["steps"] + 2) / PAGE_SPEED + p["ttl_ms"] / 1000.0,
    ),
    Scenario(
        name="update-vs-delete",
        title="Update the cache or delete it, on a write",
        summary=(
            "Two writers on the same keys: A commits, B commits, B writes the cache, A writes the "
            "cache. On the update side (odd keys) writing the cache means setting the value committed, "
            "so A's older version stays cached, different from the row until the TTL; on the delete "
            "side (even keys) it means deleting the entry, and the next read fills the newest version. "
            "Expected to fail: the update side fails, the delete side passes."
        ),
        engine=races.update_vs_delete,
        params=tuple(ROUNDS if p.name == "steps" else p for p in common.race_params(keys=4, ttl_ms=60_000, clients=2)),
        invariants=(*SIDE_INVARIANTS, common.ACKNOWLEDGED),
        expected="fail",
        cross_check=_two_keys_at_least,
        duration_s=lambda p: 5 * p["steps"] / PAGE_SPEED,
    ),
    Scenario(
        name="double-delete",
        title="The delayed double delete, swept over the delay",
        summary=(
            "The stale-set race on six keys at once, the writer deleting each entry right after its "
            "commit and again after a delay: 0, ¼, ½, ¾, 1½ and 2 times the reader's read-plus-set "
            "time. A second delete that comes before the reader's fill removes nothing, and the old "
            "value stays until the TTL; one that comes after it removes the old value. The chart "
            "shows how long the old value outlived the second delete, against the delay. The "
            "invariant, honestly: when the delay exceeds the reader's read-plus-set time, no read is "
            "stale more than the delay after the write (between the two deletes one still may be)."
        ),
        engine=races.double_delete,
        params=(*TTL_ONLY, READER_MS),
        invariants=(
            Invariant(
                "no_stale_read_after_second_delete",
                "with the delay above the reader's read-plus-set time, no read stale more than the delay after the write",
                checkers.stale_after_double_delete,
            ),
            common.CONVERGENCE,
            common.ACKNOWLEDGED,
        ),
        duration_s=lambda p: 3 / PAGE_SPEED + (3 * p["reader_ms"] + p["ttl_ms"]) / 1000.0,
    ),
    Scenario(
        name="leases",
        title="Leases: the stale set refused",
        summary=(
            "stale-set-race's schedule with leases as Facebook's memcache has them, built in Redis Lua: "
            "the reader's miss gets a lease token, the writer's delete invalidates it, and the reader's "
            "set of v1 with the old token is refused. The other readers miss while the lease is out: "
            "they wait and retry, and at most one token per key per interval means one of them reads "
            "the row and fills v2 while the rest are served it."
        ),
        engine=races.leases,
        params=common.race_params(keys=2, ttl_ms=2000, clients=3, steps=4, lease_ms=LEASE_MS),
        invariants=(common.NO_STALE_READ, common.CONVERGENCE, common.ACKNOWLEDGED),
        duration_s=lambda p: (7 * p["keys"] + p["steps"]) / PAGE_SPEED,
    ),
)
