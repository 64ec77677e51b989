"""Load on the cache: a hot key's thundering herd, penetration by absent keys, an avalanche of
entries expiring together. Shared MariaDB and Redis."""

from apps.runs.registry import Invariant, Param, Scenario

from . import checkers_load, common
from .engine.avalanche import avalanche
from .engine.herd import PROTECTED, thundering_herd
from .engine.herd import VARIANTS as HERD_VARIANTS
from .engine.penetration import penetration

HERD_BOUND = 1  # DB queries per expiry of the hot key a protected variant may send


def _herd_cross_check(clean: dict) -> dict:
    if clean["lock_ms"] <= clean["rebuild_ms"]:
        return {
            "lock_ms": [
                f"must be longer than rebuild_ms ({clean['rebuild_ms']}): a lock that expires mid-rebuild lets a second client in"
            ]
        }
    return {}


HERD_PER_EXPIRY = Invariant(
    "db_queries_per_expiry",
    f"each expiry of the hot key cost at most {HERD_BOUND} database query with a mutex, leases and XFetch "
    "(no protection is measured, not judged)",
    lambda ctx, result: checkers_load.herd_per_expiry(ctx, result, variants=PROTECTED, bound=HERD_BOUND),
)
ABSENT_BOUNDED = Invariant(
    "absent_reads_bounded",
    "reads of absent keys reach the database only while no cached null is alive, and only for keys "
    "the Bloom filter cannot rule out; no present key is told absent",
    checkers_load.absent_reads_bounded,
)
BLOOM_RATE = Invariant(
    "bloom_false_positive_rate",
    "the Bloom filter's measured false-positive rate is within five standard deviations of the formula "
    "(1 - e^(-kn/m))^k for the keys it was sized for",
    checkers_load.bloom_fp_rate,
)
AVALANCHE_PEAK = Invariant(
    "jittered_peak",
    "with jittered TTLs no window of reads sends more than peak_share of them to the database",
    checkers_load.avalanche_peak,
)


def _herd_duration(p: dict) -> float:
    return len(HERD_VARIANTS) * p["rounds"] * p["ttl_ms"] / 1000.0 + 2


def _penetration_duration(p: dict) -> float:
    return 3 * p["steps"] / 2 + 1


def _avalanche_duration(p: dict) -> float:
    return 2 * (p["ttl_ms"] * (1 + p["jitter"]) + 4 * p["tick_ms"]) / 1000.0 + 1


SCENARIOS = (
    Scenario(
        name="thundering-herd",
        title="Thundering herd on a hot key",
        summary=(
            "A hot key expires while many clients read it at once. With no protection every client "
            "that misses rebuilds it (the rebuild is slow on purpose), so one expiry sends a burst of "
            "queries to the database. A mutex (`SET NX PX`) lets one client rebuild while the others "
            "wait and read again; a lease token does the same in one Lua step; XFetch recomputes early, at random, before the entry expires, so no "
            "one waits. Charted: database queries per expiry and read latency p99 for each."
        ),
        engine=thundering_herd,
        params=(
            Param("keys", "int", 10, "rows in the items table (the first is the hot key)", min=1, max=10_000),
            Param("clients", "int", 8, "clients reading the hot key at once", min=2, max=16),
            Param("ttl_ms", "int", 3000, "how long the hot key's entry lives, in milliseconds", min=100, max=60_000),
            Param("rebuild_ms", "int", 300, "how long the query that rebuilds the entry takes", min=1, max=5_000),
            Param("think_ms", "int", 200, "each client's pause between two reads, in milliseconds", min=1, max=5_000),
            Param("rounds", "int", 3, "rounds of one TTL each, per variant", min=1, max=100),
            Param("beta", "float", 1.0, "XFetch's beta: above 1 recomputes earlier", min=0.1, max=10),
            Param("lock_ms", "int", 2000, "how long the rebuild lock lives, in milliseconds", min=1, max=60_000),
        ),
        invariants=(HERD_PER_EXPIRY, common.CONVERGENCE),
        cross_check=_herd_cross_check,
        duration_s=_herd_duration,
    ),
    Scenario(
        name="penetration",
        title="Cache penetration: reads of keys that do not exist",
        summary=(
            "Clients read keys, some of which are in no row: a cache cannot hold what is not there, "
            "so without protection every such read reaches the database. Cached nulls (a short-lived "
            "`absent` entry) answer repeats; a Bloom filter of the table's keys (rbloom, in the "
            "client) rules most absent keys out before any command, at a false-positive rate the "
            "checker measures against the formula (1 - e^(-kn/m))^k."
        ),
        engine=penetration,
        params=(
            Param(
                "keys", "int", 100, "rows in the items table (the Bloom filter is sized for them)", min=1, max=100_000
            ),
            Param("absent_keys", "int", 40, "distinct keys clients read that are in no row", min=1, max=100_000),
            Param("absent_ratio", "float", 0.5, "the share of reads that ask for an absent key", min=0, max=1),
            Param("clients", "int", 3, "clients reading at once", min=1, max=16),
            Param("steps", "int", 10, "steps per variant", min=1, max=1000),
            Param("ops", "int", 5, "reads each client makes per step", min=1, max=1000),
            Param("ttl_ms", "int", 10_000, "how long a cached row lives, in milliseconds", min=1, max=3_600_000),
            Param("null_ttl_ms", "int", 2000, "how long a cached null lives, in milliseconds", min=1, max=3_600_000),
            Param("fp_rate", "float", 0.05, "the Bloom filter's target false-positive rate", min=0.001, max=0.25),
            Param("probes", "int", 10_000, "absent keys the checker asks the filter about", min=100, max=1_000_000),
            Param("zipf", "float", 1.1, "the skew of the present keys clients pick", min=0, max=4),
        ),
        invariants=(ABSENT_BOUNDED, BLOOM_RATE),
        duration_s=_penetration_duration,
    ),
    Scenario(
        name="avalanche",
        title="Cache avalanche: entries that expire together",
        summary=(
            "Every key is loaded at once. With one TTL they all expire at the same moment and the "
            "database's read rate spikes as every read misses; with the TTL jittered (each entry "
            "lives ttl × (1 + U(0, jitter))) the expiries spread out and the database sees a trickle. "
            "DB reads per second are charted for both; the jittered run passes when no window of "
            "clients × batch reads sends more than peak_share of them to the database."
        ),
        engine=avalanche,
        params=(
            Param("keys", "int", 100, "rows in the items table, all loaded into the cache at once", min=1, max=10_000),
            Param("clients", "int", 4, "clients reading at once", min=1, max=16),
            Param("batch", "int", 10, "keys each client reads per tick (one MGET)", min=1, max=1000),
            Param("tick_ms", "int", 100, "how often each client reads a batch, in milliseconds", min=10, max=5_000),
            Param("ttl_ms", "int", 2000, "the TTL every entry is loaded with, in milliseconds", min=100, max=600_000),
            Param("jitter", "float", 2.0, "the jittered run's spread: ttl × (1 + U(0, jitter))", min=0.01, max=10),
            Param(
                "peak_share",
                "float",
                0.5,
                "the share of a window's reads the jittered run may send to the database",
                min=0,
                max=1,
            ),
        ),
        invariants=(AVALANCHE_PEAK,),
        duration_s=_avalanche_duration,
    ),
)
