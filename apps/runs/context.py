"""The run context every engine gets (DESIGN.md, "The run context"). Plain Python: no Django."""

import random
import threading
import time

from .engine_api import RunStopped, cmd
from .history import History

__all__ = ["ACTIONS", "NullControl", "RunContext", "RunStopped"]

ACTIONS = ("pause", "resume", "step", "speed", "stop", "fault")


class NullControl:
    """No one steers this run (tests, the command line)."""

    def poll(self):
        return []

    def wait(self, timeout):
        time.sleep(timeout)
        return None


class RunContext:
    def __init__(
        self,
        *,
        run_id,
        params,
        seed,
        recorder,
        nodes=None,
        control=None,
        time_limit=120.0,
        max_pause=900.0,
        event_limit=250_000,
        speed=0.0,
        on_status=None,
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
        self.recorded = None
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
        self._stop_status = "cancelled"
        self._fault_handlers = {}  # kind -> handler(target, **options), an engine's own faults
        self._step_lock = threading.RLock()

    @property
    def clock(self):
        """Milliseconds since the run started, paused time included (it is what a viewer saw)."""
        return round((time.monotonic() - self._t0) * 1000.0, 2)

    @property
    def active_clock(self):
        """Seconds since the run started, not counting the time it was held at a step boundary
        (paced or paused). A protocol's own timers run on this clock, so slowing a run down to
        watch it does not make its timeouts fire."""
        now = time.monotonic()
        held = self._held_for + (now - self._held_since if self._held_since is not None else 0.0)
        return now - self._t0 - held

    def emit(self, kind, actor="", to="", label="", data=None, **fields):
        if self._recorder.seq >= self._event_limit:
            self.cancel(f"the run reached its limit of {self._event_limit} events", status="failed")
            raise RunStopped(self.cancel_reason, "failed")
        return self._recorder.emit(kind, actor=actor, to=to, label=label, data=data, **fields)

    def cmd(self, node, command, call, *, actor="", summary=None):
        """Runs one real command on `node` and records it as one `cmd` event (engine_api.cmd)."""
        return cmd(self.emit, actor, node, command, call, summary=summary)

    def cancel(self, reason, status="cancelled"):
        if not self.cancelled.is_set():
            self.cancel_reason = reason
            self._stop_status = status
            self.cancelled.set()

    def step(self):
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

    def on_fault(self, kind, handler):
        """Lets the engine handle a fault that is not a node's, e.g. "crash" on the coordinator:
        `handler(target, **options)` acts (or raises ValueError to refuse) and may return details
        for the `fault` event."""
        self._fault_handlers[kind] = handler

    def fault(self, kind, target, **options):
        """Injects a fault and records it: the engine's own when it registered `kind`, otherwise a
        real one through the run's nodes."""
        handler = self._fault_handlers.get(kind)
        if handler is not None:
            detail = handler(target, **options) or {}
            self.emit("fault", actor="instructor", to=target, label=f"{kind} {target}", data={"kind": kind, **detail})
            return detail
        if self.nodes is None:
            raise ValueError("this run has no nodes to inject faults into")
        # The nodes record the `fault` event, and a `node` event for any node whose state it changes.
        return self.nodes.fault(kind, target, emit=self.emit, **options)

    def _wait_while_paused(self):
        self._recorder.flush(timeout=5)
        self._on_status("paused", step=self.steps)
        began = time.monotonic()
        while self.paused and not self.cancelled.is_set():
            if self._step_credits:
                self._step_credits -= 1
                break
            if time.monotonic() - began > self._max_pause:
                self.cancel(f"the run stayed paused for more than {self._max_pause:.0f} s")
                break
            self._apply(self._control.wait(0.5))
        self._paused_for += time.monotonic() - began
        if not self.cancelled.is_set():
            self._on_status("paused" if self.paused else "running", step=self.steps)

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
                self.fault(command["kind"], command["target"], **command.get("options", {}))
            except Exception as exc:  # noqa: BLE001 - a failed injection is reported, not fatal
                self.emit("log", actor="instructor", label=f"fault {command.get('kind')} failed: {exc}")
