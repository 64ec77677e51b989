"""Chaos: transfers one after another under a seeded schedule of faults, with recovery after each."""

from apps.runs.engine_api import Context

from .bank import COORDINATOR, Transfer, begin, log_location, participants_of, summary
from .coordinator import Coordinator, CoordinatorCrashed, Crash
from .recovery import recover
from .xa import sql

CHAOS_POINTS = ("work", "prepare", "after-prepare", "after-decision", "mid-commit")
CHAOS_FAULTS = ("crash", "kill", "drop")


def chaos_schedule(ctx: Context, transfers: list[Transfer]) -> dict[int, tuple[str, str, str]]:
    """{transfer n: (fault, point, participant)}, drawn from the seeded rng: a seed fixes it."""
    schedule = {}
    for t in transfers:
        if ctx.rng.randrange(100) < ctx.params["fault_percent"]:
            points = CHAOS_POINTS if len(t.participants) > 1 else ("work",)
            schedule[t.n] = (ctx.rng.choice(CHAOS_FAULTS), ctx.rng.choice(points), ctx.rng.choice(t.participants))
    return schedule


class ChaosCoordinator(Coordinator):
    """A coordinator that meets the schedule's faults: it crashes, a participant's server is
    SIGKILLed and restarted, or its connection to a participant is killed on the server."""

    def __init__(self, *args, schedule, **kwargs):
        super().__init__(*args, **kwargs)
        self.schedule = schedule
        self.faulted = False

    def checkpoint(self, point, transfer):
        super().checkpoint(point, transfer)
        planned = self.schedule.get(transfer.n)
        if not planned or planned[1] != point or self.faulted:
            return
        fault, _, target = planned
        self.faulted = True
        if fault == "crash":
            self.ctx.emit("log", actor=COORDINATOR, label=f"coordinator crashes at {point} of {transfer.gtrid}")
            raise CoordinatorCrashed(point)
        if fault == "kill":
            self.ctx.fault("kill", target)
            self.ctx.step()
            self.ctx.fault("restart", target)
        elif fault == "drop" and target in self.conns:
            thread_id = self.conns[target].thread_id()
            killer = self.participants[target].connect(self.ctx)
            sql(self.ctx, killer, "chaos", target, "KILL CONNECTION %s", (thread_id,))
            killer.close()
            self.ctx.emit(
                "fault",
                actor="chaos",
                to=target,
                label=f"drop the coordinator's connection to {target}",
                data={"kind": "drop-connection", "connection": thread_id},
            )


def chaos(ctx: Context) -> dict:
    """Transfers one at a time under a seeded schedule of faults; after each fault a fresh
    coordinator recovers from the log and XA RECOVER before the next transfer."""
    participants = participants_of(ctx)
    log = log_location(participants)
    transfers = begin(ctx, participants, log)
    schedule = chaos_schedule(ctx, transfers)
    ctx.emit(
        "log",
        actor="chaos",
        label=f"{len(schedule)} faults scheduled",
        data={"schedule": {t: list(f) for t, f in schedule.items()}},
    )
    outcomes, recoveries = {}, []
    # An instructor's crash meets whichever transfer's coordinator takes the next step.
    button = Crash()
    ctx.on_fault("crash", button.on_fault)
    for transfer in transfers:
        crash = Crash(requested=button.requested)
        coordinator = ChaosCoordinator(ctx, "client1", participants, log, crash, schedule=schedule)
        try:
            outcomes[transfer.gtrid] = coordinator.run_transfer(transfer)
        except CoordinatorCrashed:
            outcomes[transfer.gtrid] = "crashed"
            ctx.emit("node", actor=COORDINATOR, label="coordinator crashed", data={"state": "down"})
        finally:
            coordinator.abandon()
        if coordinator.faulted or outcomes[transfer.gtrid] in ("in doubt", "crashed"):
            recoveries.append({"after": transfer.gtrid, "actions": recover(ctx, participants, log)})
    button.over = True
    result = summary(ctx, participants, log, transfers, outcomes)
    result["schedule"] = {t: list(f) for t, f in schedule.items()}
    result["recoveries"] = recoveries
    return result
