"""The run context every engine gets (DESIGN.md, "The run context"). Plain Python: no Django."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .engine_api import RunStopped, cmd
from .history import History

__all__ = ["ACTIONS", "NullControl", "RunContext", "RunStopped"]

ACTIONS = ("pause", "resume", "step", "speed", "stop", "fault")
T = TypeVar("T")
# A Step lets one boundary through. When an engine's threads wait at boundaries side by side, the
# next one would stop at once, before the thread let through recorded anything, and the press would
# seem to do nothing; so a stop first waits this long at most for the released step's first event.
STEP_SHOWN_WITHIN_S = 2.0


class Recorder(Protocol):
    """Where the events go (apps/runs/recorder.py)."""

    seq: int

    def emit(self, kind: str, **fields: Any) -> dict: ...
    def flush(self, timeout: float | None = None) -> Any: ...


class Control(Protocol):
    """Commands from the run's viewers: pause, resume, step, speed, stop, fault."""

    def poll(self) -> list[dict]: ...
    def wait(self, timeout: float) -> dict | None: ...


class NullControl:
    """No one steers this run (tests, the command line)."""

    def poll(self) -> list[dict]:
        return []

    def wait(self, timeout: float) -> dict | None:
        time.sleep(timeout)
        return None


class RunContext:
    """The engine API's Context (apps/runs/engine_api.py), for one run."""

    def __init__(
        self,
        *,
        run_id: int,
        params: dict[str, Any],
        seed: int,
        recorder: Recorder,
        nodes: Any = None,
        control: Control | None = None,
        time_limit: float = 120.0,
        max_pause: float = 900.0,
        event_limit: int = 250_000,
        speed: float = 0.0,
        on_status: Callable[..., None] | None = None,
    ):
        self.run_id = run_id
        self.params = params
        self.seed = seed
        self.rng = random.Random(seed)
        self.nodes = nodes
        self.history = History(self)
        self.cancelled = threading.Event()
        self.cancel_reason = None
        self.speed = float(speed)
        self.paused = False
        self.steps = 0
        # () -> (events stored, highest seq stored), read from the real event store when there is one.
        self.recorded: Callable[[], tuple[int, int]] | None = None
        self._recorder = recorder
        self._control = control or NullControl()
        self._on_status = on_status or (lambda status, **info: None)
        self._time_limit = time_limit
        self._max_pause = max_pause
        self._event_limit = event_limit
        self._t0 = time.monotonic()
        self._paused_for = 0.0
        self._held_for = 0.0  # time held at step boundaries: paced or paused
        self._held_since = None
        self._last_boundary = self._t0
        self._step_credits = 0
        self._released_at: int | None = None  # the recorder's seq when a Step last let a boundary through
        self._stop_status = "cancelled"
        self._fault_handlers: dict[
            str, Callable[..., Any]
        ] = {}  # kind -> handler(target, **options), an engine's own faults
        self._step_lock = threading.RLock()

    @property
    def clock(self) -> float:
        """Milliseconds since the run started, paused time included (it is what a viewer saw)."""
        return round((time.monotonic() - self._t0) * 1000.0, 2)

    @property
    def active_clock(self) -> float:
        """Seconds since the run started, not counting the time it was held at a step boundary
        (paced or paused). A protocol's own timers run on this clock, so slowing a run down to
        watch it does not make its timeouts fire."""
        now = time.monotonic()
        held = self._held_for + (now - self._held_since if self._held_since is not None else 0.0)
        return now - self._t0 - held

    def emit(self, kind: str, actor: str = "", to: str = "", label: str = "", data: Any = None, **fields: Any) -> dict:
        if self._recorder.seq >= self._event_limit:
            self.cancel(f"the run reached its limit of {self._event_limit} events", status="failed")
            raise RunStopped(self.cancel_reason, "failed")
        return self._recorder.emit(kind, actor=actor, to=to, label=label, data=data, **fields)

    def cmd(
        self,
        node: str,
        command: str,
        call: Callable[[], T],
        *,
        actor: str = "",
        summary: Callable[[T], Any] | None = None,
    ) -> T:
        """Runs one real command on `node` and records it as one `cmd` event (engine_api.cmd)."""
        return cmd(self.emit, actor, node, command, call, summary=summary)

    def cancel(self, reason: str, status: str = "cancelled") -> None:
        if not self.cancelled.is_set():
            self.cancel_reason = reason
            self._stop_status = status
            self.cancelled.set()

    def step(self) -> None:
        """A step boundary: a paused run waits here, and a "step" lets it through exactly one.
        Engines with several threads (one per client) pass their boundaries one at a time, so a
        paced run takes its steps at the chosen rate whichever thread takes them."""
        with self._step_lock:
            self._step()

    def _step(self):
        self.steps += 1
        self._apply_all(self._control.poll())
        self._check_limits()
        self._held_since = time.monotonic()
        try:
            self._hold()
        finally:
            self._held_for += time.monotonic() - self._held_since
            self._held_since = None
        self._check_limits()
        self._last_boundary = time.monotonic()

    def _hold(self):
        if self.speed > 0 and not self.paused:
            deadline = self._last_boundary + 1.0 / self.speed
            while not self.paused and not self.cancelled.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._apply(self._control.wait(min(remaining, 0.5)))
        if self.paused:
            self._wait_while_paused()

    def on_fault(self, kind: str, handler: Callable[..., Any]) -> None:
        """Lets the engine handle a fault that is not a node's, e.g. "crash" on the coordinator:
        `handler(target, **options)` acts (or raises ValueError to refuse) and may return details
        for the `fault` event."""
        self._fault_handlers[kind] = handler

    def fault(self, kind: str, target: str, *, by: str | None = None, **options: Any) -> Any:
        """Injects a fault and records it: the engine's own when it registered `kind`, otherwise a
        real one through the run's nodes. `by` is the user who pressed the fault's button: the
        `fault` event names them as its actor and in its data, so the story credits them."""
        handler = self._fault_handlers.get(kind)
        if handler is not None:
            detail = handler(target, **options) or {}
            data = {"kind": kind, **detail, **({"by": by} if by else {})}
            self.emit("fault", actor=by or "instructor", to=target, label=f"{kind} {target}", data=data)
            return detail
        if self.nodes is None:
            raise ValueError("this run has no nodes to inject faults into")
        # The nodes record the `fault` event, and a `node` event for any node whose state it changes.
        return self.nodes.fault(kind, target, emit=self._crediting(by), **options)

    def _crediting(self, by: str | None) -> Callable[..., dict]:
        """self.emit, with the `fault` events the nodes record credited to `by` (when known)."""
        if not by:
            return self.emit

        def emit(kind: str, **fields: Any) -> dict:
            if kind == "fault":
                fields["actor"] = by
                fields["data"] = {**(fields.get("data") or {}), "by": by}
            return self.emit(kind, **fields)

        return emit

    def _wait_while_paused(self):
        self._await_released_step()
        self._recorder.flush(timeout=5)
        self._on_status("paused", step=self.steps)
        began = time.monotonic()
        while self.paused and not self.cancelled.is_set():
            if self._step_credits:
                self._step_credits -= 1
                self._released_at = self._recorder.seq
                break
            if time.monotonic() - began > self._max_pause:
                self.cancel(f"the run stayed paused for more than {self._max_pause:.0f} s")
                break
            self._apply(self._control.wait(0.5))
        self._paused_for += time.monotonic() - began
        if not self.cancelled.is_set():
            self._on_status("paused" if self.paused else "running", step=self.steps)

    def _await_released_step(self):
        """Waits until the step a Step let through has recorded an event (see STEP_SHOWN_WITHIN_S)."""
        released, self._released_at = self._released_at, None
        if released is None:
            return
        deadline = time.monotonic() + STEP_SHOWN_WITHIN_S
        while self._recorder.seq == released and time.monotonic() < deadline and not self.cancelled.is_set():
            time.sleep(0.01)

    def _check_limits(self):
        busy = time.monotonic() - self._t0 - self._paused_for
        if busy > self._time_limit:
            self.cancel(f"the run reached its time limit of {self._time_limit:.0f} s", status="failed")
        if self.cancelled.is_set():
            raise RunStopped(self.cancel_reason, self._stop_status)

    def _apply_all(self, commands):
        for command in commands:
            self._apply(command)

    def _apply(self, command):
        if not command:
            return
        action = command.get("action")
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
            self._step_credits = 0
            self._released_at = None
        elif action == "step":
            # On a running run, "step" pauses it at the next boundary; on a paused one it advances one.
            if self.paused:
                self._step_credits += 1
            self.paused = True
        elif action == "speed":
            self.speed = max(0.0, float(command.get("value", 0)))
            self._on_status("paused" if self.paused else "running", step=self.steps, speed=self.speed)
        elif action == "stop":
            who = command.get("by") or "a user"
            self.cancel(f"stopped by {who}")
        elif action == "fault":
            try:
                self.fault(command["kind"], command["target"], by=command.get("by"), **command.get("options", {}))
            except Exception as exc:  # noqa: BLE001 - a failed injection is reported, not fatal
                who = command.get("by") or "instructor"
                self.emit("log", actor=who, label=f"fault {command.get('kind')} failed: {exc}")
