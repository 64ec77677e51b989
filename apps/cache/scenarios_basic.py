"""Cache-aside and its races, on the shared MariaDB and Redis."""

from apps.runs.registry import Scenario

from . import common
from .engine.aside import cache_aside

SCENARIOS = (
    Scenario(
        name="cache-aside",
        title="Cache-aside with a TTL",
        summary=(
            "Clients read through a Redis cache in front of a MariaDB table: `GET`; on a miss read "
            "the row and `SET … PX` it with the TTL; a write commits the row and deletes the entry. "
            "Watch the hit ratio climb as hot keys settle in, and keys expire and come back. What it "
            "promises is bounded staleness: a read is at most one TTL behind the newest write."
        ),
        engine=cache_aside,
        params=common.params(),
        invariants=common.TTL_BOUNDED,
        # The steps at the page's pace, then one TTL run out before the last reads.
        duration_s=lambda p: p["steps"] / 2 + p["ttl_ms"] / 1000.0 + 1,
    ),
)
