"""The distributed cache lab: a Redis cache in front of a MariaDB table, its races and its cures."""

from apps.runs.registry import Assets, Fault, Lab, register

from .engine.store import with_flush
from .narration import NARRATION
from .scenarios_basic import SCENARIOS as BASIC
from .scenarios_load import SCENARIOS as LOAD
from .scenarios_races import SCENARIOS as RACES
from .scenarios_scale import SCENARIOS as SCALE
from .scenarios_write import SCENARIOS as WRITE

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
_ALL = {
    s.name: s
    for s in (
        *BASIC,
        *RACES,
        *WRITE,
        *SCALE,
        *LOAD,
    )
}

# Every scenario has the button that empties the run's cache: watch the hit ratio fall and the
# database take every read until the cache warms again.
FLUSH = Fault("flush", ("cache",), "delete every entry of the run's cache (DEL of its keys)")
for _scenario in _ALL.values():
    _scenario.engine = with_flush(_scenario.engine)
    _scenario.faults = (*_scenario.faults, FLUSH)
    _scenario.watch, _scenario.captions = NARRATION[_scenario.name]

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
