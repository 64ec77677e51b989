"""The distributed cache lab: a Redis cache in front of a MariaDB table, its races and its cures."""

from apps.runs.registry import Assets, Lab, register

from .scenarios_basic import SCENARIOS as BASIC

ORDER = (
    "cache-aside",
    "stale-set-race",
    "update-vs-delete",
    "double-delete",
    "leases",
    "thundering-herd",
    "penetration",
    "avalanche",
    "write-behind-loss",
    "write-through",
    "cache-node-down",
    "sharding",
    "near-cache",
)
_ALL = {s.name: s for s in (*BASIC,)}

LAB = register(
    Lab(
        name="cache",
        title="Distributed cache",
        explanation=(
            "A Redis cache in front of a MariaDB table, read and written by concurrent clients. "
            "Cache-aside and the races that serve stale values, leases that refuse a stale set, "
            "herds, penetration and avalanches, writes behind and through, sharding over several "
            "Redis nodes and near caches kept coherent by invalidations. The checker holds every "
            "read a client was served to the writes committed before it."
        ),
        scenarios=[_ALL[name] for name in ORDER if name in _ALL],
        run_page=Assets(css=("cache/css/cache.css",), js=("cache/js/cache.js",)),
    )
)
