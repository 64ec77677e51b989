"""The events a round of the job records for the run page: tasks' and workers' states, phases and
counters, each marked with its round when the scenario runs several (mapreduce.js folds them)."""

from collections.abc import Callable
from typing import Any

from apps.runs.engine_api import Context

from .model import Attempt, Task, WorkerState


class RoundEvents:
    def __init__(self, ctx: Context, index: int, label: str, run_ms: Callable[[float], float]):
        self.ctx, self.index, self.label = ctx, index, label
        self.run_ms = run_ms  # a worker's own timestamp as milliseconds of the run

    def data(self, **data: Any) -> dict:
        if self.label:
            data["round"] = self.index
            data["round_label"] = self.label
        return data

    def phase(self, name: str, state: str) -> None:
        self.ctx.emit("phase", actor="coordinator", label=f"{name} {state}s", data=self.data(name=name, state=state))

    def task(self, task: Task, a: Attempt | None = None, state: str | None = None, **extra: Any) -> None:
        state = state or "idle"
        label = f"{task.id} {state}" + (f" on {a.worker.name}" if a else "") + (" (backup)" if a and a.backup else "")
        report = a.report if a else {}
        self.ctx.emit(
            "state",
            actor="coordinator",
            label=label,
            data=self.data(
                type="task",
                task=task.id,
                kind=task.kind,
                state=state,
                attempt=a.n if a else len(task.attempts) + 1,
                backup=bool(a and a.backup),
                worker=a.worker.name if a else None,
                host=a.worker.host if a else None,
                start_ms=self.run_ms(a.w_start) if a and a.w_start else None,
                end_ms=self.run_ms(a.w_end) if a and a.w_end else None,
                records_in=report.get("records_in", 0),
                records_out=report.get("records_out", 0),
                bytes_out=report.get("bytes_out", 0),
                pid=a.pid if a else None,
                cpu_ms=report.get("cpu_ms"),
                **extra,
            ),
        )

    def worker(self, worker: WorkerState, state: str, **extra: Any) -> None:
        """The worker's new state, recorded only when it changes (or says something new)."""
        if worker.state == state and not extra:
            return
        worker.state = state
        self.ctx.emit(
            "state",
            actor=worker.name,
            label=f"{worker.name} {state}",
            data=self.data(type="worker", worker=worker.name, host=worker.host, state=state, **extra),
        )

    def metric(self, name: str, value: float) -> None:
        data = {"name": name, "value": value, "x": self.ctx.clock, "y": value}
        if self.label:
            data["series"] = self.label
        self.ctx.emit("metric", actor="coordinator", label=f"{name} {value}", data=data)
