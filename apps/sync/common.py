"""What the sync lab's scenarios share: their parameters, their invariants, the dedicated servers."""

from apps.runs.registry import Invariant, Param

from . import checkers

INVARIANTS = (
    Invariant("b_equals_a", "B holds exactly A's rows (chunk checksums, then row by row)", checkers.b_equals_a),
    Invariant("no_duplicate_keys", "no business key appears twice in B", checkers.no_duplicate_keys),
    Invariant(
        "acknowledged_writes",
        "every write A acknowledged is in B, every acknowledged delete gone from it",
        checkers.acknowledged_writes,
    ),
    Invariant(
        "per_key_order",
        "for every key, B's version is A's (no older write overwrote a newer one)",
        checkers.per_key_order,
    ),
)


def params(rows=40, rate=3, steps=16, **extra):
    """The workload's parameters (every scenario has them) and any of the syncer's own."""
    common = [
        Param("rows", "int", rows, "rows in A before the sync starts", min=1, max=100_000),
        Param(
            "rate", "int", rate, "writes the workload makes to A per step (inserts, updates, deletes)", min=0, max=1000
        ),
        Param("steps", "int", steps, "steps the workload keeps writing for", min=1, max=1000),
    ]
    return (*common, *extra.values())


def chunk_param(default=10, help="rows per chunk"):
    return Param("chunk", "int", default, help, min=1, max=100_000)


# Two dedicated MariaDB servers: db1 holds A and writes the binlog a CDC reader streams (row events
# with full images and metadata), db2 holds B. Both get the settings; only db1's binlog is read.
BINLOG_OPTIONS = [
    "--log-bin=binlog",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
    "--server-id=1",
    "--sync-binlog=1",
]
TWO_SERVERS = {"mariadb": 2, "options": BINLOG_OPTIONS}


def paced(full_speed_s: float, catch_up: int = 1):
    """How long a run takes at the page's 2 steps/s: its time at full speed with the default
    parameters (measured), plus half a second at each step boundary — one after the start, one a
    step, one a catch-up pass (20 for a syncer that never catches up)."""
    return lambda p: full_speed_s + (p["steps"] + 1 + catch_up) / 2
