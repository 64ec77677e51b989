"""The data sync lab: keep table B equal to table A while A keeps changing, every way people do it."""

from apps.runs.registry import Assets, Lab, register

from .scenarios_apply import SCENARIOS as APPLY
from .scenarios_basic import SCENARIOS as BASIC
from .scenarios_cdc import SCENARIOS as CDC
from .scenarios_copy import SCENARIOS as COPY

# From the loop people write first to change data capture, then the tools that verify and repair.
ORDER = (
    "naive-latest",
    "full-copy",
    "retry-duplicates",
    "retry-idempotent",
    "incremental-timestamp",
    "cdc-binlog",
    "cdc-crash-replay",
    "cdc-offset-first",
    "cdc-atomic-offset",
    "parallel-apply",
    "parallel-apply-keyed",
    "schema-change",
    "checksum-repair",
    "binlog-purged",
)
_ALL = {s.name: s for s in (*BASIC, *COPY, *CDC, *APPLY)}

LAB = register(
    Lab(
        name="sync",
        title="Data sync",
        explanation=(
            "Keep a target table B equal to a source table A while A keeps changing: inserts, "
            "updates, deletes and a long transaction that commits late. From the naive loop people "
            "write first, through chunked copies with retries and timestamp polling, to change data "
            "capture from MariaDB's binlog and checksum-based repair. Every run ends with a checker "
            "reading both tables again and comparing them chunk by chunk, then row by row."
        ),
        scenarios=[_ALL[name] for name in ORDER if name in _ALL],
        run_page=Assets(css=("sync/css/sync.css",), js=("sync/js/sync.js",)),
    )
)
