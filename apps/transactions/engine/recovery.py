"""Recovery: a fresh coordinator resolves every in-doubt branch from its decision log and XA RECOVER."""

import pymysql
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from apps.runs.engine_api import Context

from .bank import COORDINATOR, Participant
from .xa import in_doubt, sql, xid

XAER_NOTA = 1397


def _still_attached(exc: BaseException) -> bool:
    """XAER_NOTA for a branch XA RECOVER has just listed: the server is still detaching it from the
    crashed coordinator's session, closed a moment ago; it is ours to end once that is done. Each
    try is recorded as a command of its own."""
    # pymysql.OperationalError, not pymysql.err.…: see apps/cluster/servers.py.
    return isinstance(exc, pymysql.OperationalError) and exc.args[0] == XAER_NOTA


def recover(
    ctx: Context, participants: list[Participant], log: Participant | None, naive: bool = False, again: bool = False
) -> list[dict]:
    """A fresh coordinator resolves every in-doubt branch: commit when the log holds a commit
    decision, roll back otherwise (presumed abort); with `naive`, there is no log and it rolls
    back whatever it finds. Returns the actions taken; a second call finds nothing to do."""
    actor = "recovery"
    if again:
        ctx.emit("phase", actor=actor, label="recovery again: it must change nothing", data={"phase": "recovery"})
    else:
        ctx.emit("node", actor=COORDINATOR, label="coordinator restarts and recovers", data={"state": "up"})
        ctx.emit("phase", actor=actor, label="recovery", data={"phase": "recovery"})
    decisions = {}
    if log is not None and not naive:
        conn = log.connect(ctx)
        rows = sql(ctx, conn, actor, COORDINATOR, "SELECT gtrid, decision FROM decisions")
        decisions = dict(rows)
        conn.close()
        ctx.emit(
            "log",
            actor=actor,
            label=f"the decision log holds {len(decisions)} records; no record means abort",
            data={"decisions": decisions},
        )
    actions = []
    for p in participants:
        conn = p.connect(ctx)
        request = ctx.emit("msg", actor=actor, to=p.name, label="XA RECOVER")
        branches = in_doubt(ctx.run_id, p.name, sql(ctx, conn, actor, p.name, "XA RECOVER"))
        ctx.emit(
            "msg",
            actor=p.name,
            to=actor,
            label=f"{len(branches)} in doubt",
            data={"reply_to": request["seq"], "xids": [xid(*b) for b in branches]},
        )
        for gtrid, bqual in branches:
            ctx.step()
            verb = "COMMIT" if decisions.get(gtrid) == "commit" else "ROLLBACK"
            request = ctx.emit("msg", actor=actor, to=p.name, label=f"{verb} {gtrid}", data={"gtrid": gtrid})
            for attempt in Retrying(
                retry=retry_if_exception(_still_attached), stop=stop_after_delay(5), wait=wait_fixed(0.1), reraise=True
            ):
                with attempt:
                    sql(ctx, conn, actor, p.name, f"XA {verb} %s, %s", (gtrid, bqual))
            state = "COMMITTED" if verb == "COMMIT" else "ROLLED BACK"
            ctx.emit("msg", actor=p.name, to=actor, label=state, data={"reply_to": request["seq"]})
            ctx.emit(
                "state",
                actor=p.name,
                label=f"{gtrid} {state}",
                data={"state": state, "xid": xid(gtrid, bqual), "gtrid": gtrid, "by": actor},
            )
            actions.append({"participant": p.name, "gtrid": gtrid, "action": verb.lower()})
        conn.close()
    ctx.emit("log", actor=actor, label=f"recovery resolved {len(actions)} branches", data={"actions": actions})
    return actions
