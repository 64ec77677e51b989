"""Recovery right after a crash: XA RECOVER lists a prepared branch the server is still detaching
from the crashed coordinator's session, and XA COMMIT/ROLLBACK of it answers XAER_NOTA until that is
done. Recovery tries again (each try recorded) and ends the branch, rather than failing the run."""

import random
import threading

from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.transactions.engine.bank import Participant
from apps.transactions.engine.recovery import XAER_NOTA, recover
from apps.transactions.engine.xa import in_doubt
from tests.conftest import lab_node_urls


def test_recovery_ends_a_branch_once_the_crashed_session_lets_go_of_it():
    run_id = random.randrange(10**8, 10**9)
    sink = ListSink()
    recorder = Recorder(run_id, [sink])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params={}, seed=1, recorder=recorder, nodes=nodes, control=None)
    p1 = Participant("p1", "p1")
    gtrid = f"r{run_id}-t1"
    try:
        # The crashed coordinator's session: a prepared branch, still attached while it closes.
        holder = p1.connect(ctx)
        with holder.cursor() as cur:
            cur.execute("CREATE TABLE accounts (id INT PRIMARY KEY)")
            cur.execute("XA START %s, 'p1'", (gtrid,))
            cur.execute("INSERT INTO accounts VALUES (1)")
            cur.execute("XA END %s, 'p1'", (gtrid,))
            cur.execute("XA PREPARE %s, 'p1'", (gtrid,))
        closing = threading.Timer(0.5, holder.close)
        closing.start()

        actions = recover(ctx, [p1], log=None)
        closing.join()
        recorder.flush()

        assert actions == [{"participant": "p1", "gtrid": gtrid, "action": "rollback"}]
        tries = [e for e in sink.events if e["kind"] == "cmd" and e["label"].startswith("XA ROLLBACK")]
        assert len(tries) >= 2 and tries[-1]["data"]["ok"] is True
        assert all(str(XAER_NOTA) in t["data"]["error"] for t in tries[:-1])
        # A new connection finds nothing of the run in doubt, and the row never committed.
        check = p1.connect(ctx)
        with check.cursor() as cur:
            cur.execute("XA RECOVER")
            assert in_doubt(run_id, "p1", cur.fetchall()) == []
            cur.execute("SELECT COUNT(*) FROM accounts")
            assert cur.fetchone()[0] == 0
        check.close()
    finally:
        nodes.cleanup()
        recorder.close()
