"""Recovery: a fresh coordinator resolves every in-doubt branch from its decision log and XA RECOVER."""

from apps.runs.engine_api import Context

from .bank import COORDINATOR, Participant
from .xa import in_doubt, sql, xid


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
