"""Distributed transactions over real MariaDB XA: two-phase commit, coordinator crashes, recovery.

Plain Python: runs against the real servers through `ctx.nodes`; no Django, no Celery; of the
platform it imports only the engine API.

A `Coordinator` (one per client thread) moves money between accounts held by different
`Participant`s, each a MariaDB database (shared node) or a whole MariaDB server (dedicated nodes).
Each transfer is a global transaction with gtrid `r<run>-t<n>` and one XA branch per participant
(bqual = the participant's name). The coordinator logs its commit decision durably before phase 2
(presumed abort: no record means abort); `recover()` resolves every in-doubt branch from that log.

    bank.py         participants, accounts, transfers, and a bank client that needs a row
    xa.py           the SQL sent (each statement recorded as one `cmd` event) and XA ids
    coordinator.py  the 2PC coordinator, and where it crashes
    recovery.py     resolving in-doubt branches from the decision log and XA RECOVER
    twopc.py        the 2PC scenarios' engine; chaos.py the chaos scenario's; threepc.py 3PC's
"""

from .bank import COORDINATOR, Participant, Transfer, participants_of, snapshot
from .chaos import chaos
from .coordinator import CRASH_POINTS, Coordinator, CoordinatorCrashed, Crash, VoteNo
from .recovery import recover
from .twopc import two_phase_commit
from .xa import in_doubt, sql, xid

__all__ = [
    "COORDINATOR",
    "CRASH_POINTS",
    "Coordinator",
    "CoordinatorCrashed",
    "Crash",
    "Participant",
    "Transfer",
    "VoteNo",
    "chaos",
    "in_doubt",
    "participants_of",
    "recover",
    "snapshot",
    "sql",
    "two_phase_commit",
    "xid",
]
