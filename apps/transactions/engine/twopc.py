"""Two-phase commit as the scenarios run it: concurrent clients, a crash where the scenario says,
a client blocked behind an in-doubt branch, and recovery (twice: the second must change nothing)."""

import threading
from concurrent.futures import ThreadPoolExecutor

from apps.runs.engine_api import Context

from .bank import (
    COORDINATOR,
    begin,
    client_locks_account,
    log_location,
    not_started,
    participants_of,
    snapshot,
    summary,
)
from .coordinator import Coordinator, CoordinatorCrashed, Crash, ParticipantKiller
from .recovery import recover


def two_phase_commit(ctx: Context) -> dict:
    participants = participants_of(ctx)
    with_log = not ctx.params.get("no_log")
    log = log_location(participants) if with_log else None
    crash = Crash(ctx.params.get("crash_point") or None, ctx.params.get("crash_transfer", 1))
    kind = ParticipantKiller if crash.point == "participant-kill" else Coordinator
    if crash.point == "participant-kill":
        crash.point = None  # the coordinator itself does not crash

    ctx.on_fault("crash", crash.on_fault)
    transfers = begin(ctx, participants, log)
    queue = list(transfers)
    lock = threading.Lock()
    outcomes = {}

    def client(i):
        coordinator = kind(ctx, f"client{i}", participants, log, crash)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    transfer = queue.pop(0)
                outcomes[transfer.gtrid] = coordinator.run_transfer(transfer)
        except CoordinatorCrashed:
            pass  # this client's coordinator is gone; recovery takes over below
        finally:
            coordinator.abandon()

    with ThreadPoolExecutor(ctx.params["concurrency"], thread_name_prefix=f"run{ctx.run_id}-client") as pool:
        for f in [pool.submit(client, i) for i in range(1, ctx.params["concurrency"] + 1)]:
            f.result()
    crash.over = True

    result = summary(ctx, participants, log, transfers, outcomes)
    needs_recovery = crash.fired.is_set() or any(o == "in doubt" for o in outcomes.values())
    if crash.fired.is_set():
        ctx.emit("node", actor=COORDINATOR, label="coordinator crashed", data={"state": "down"})
        victim = crash.victim
        result["not_started"] = not_started(ctx, victim, queue)
        # A client shows the blocking when the victim's debited branch is left PREPARED, in doubt.
        if (
            victim
            and (crash.point == "after-prepare" or crash.by_instructor)
            and (crash.branches.get(victim.source[0]) == "PREPARED")
        ):
            source = next(p for p in participants if p.name == victim.source[0])
            result["blocked"] = client_locks_account(ctx, source, victim.source[1])
        ctx.step()
    if needs_recovery:
        result["recovery"] = recover(ctx, participants, log, naive=not with_log)
        before = snapshot(ctx, participants)
        result["recovery_again"] = recover(ctx, participants, log, naive=not with_log, again=True)
        result["unchanged_by_second_recovery"] = snapshot(ctx, participants) == before
        if "blocked" in result:
            blocked = result["blocked"]
            source = next(p for p in participants if p.name == blocked["participant"])
            result["unblocked"] = client_locks_account(ctx, source, blocked["account"])
    return result
