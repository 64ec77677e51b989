"""What every engine of the lab shares: N clients as threads, their lanes' states, counters, and the
pause an instructor can put on one client (a GC pause on demand)."""

import random
import threading
import time

from apps.runs.engine_api import RunStopped


class Clients:
    """The run's clients c1..cN. `run(body)` calls body(name, rng) in one thread per client and
    re-raises the first error any of them met (a stopped run included) once all have ended."""

    def __init__(self, ctx, count, lock="", names=None):
        self.ctx = ctx
        self.names = list(names or (f"c{i}" for i in range(1, count + 1)))
        self.lock = lock
        self._gate = threading.Condition()
        self._paused = set()
        self._counts = {}
        self._count_lock = threading.Lock()
        self.errors = []
        self._polled = 0.0
        self.rngs = {name: random.Random(ctx.rng.random()) for name in self.names}
        ctx.on_fault("pause", self._pause)
        ctx.on_fault("resume", self._resume)

    # States and counters ---------------------------------------------------------------------
    def state(self, name, state, token=None, lock=None, **extra):
        data = {"type": "client", "client": name, "state": state, "token": token, "lock": lock or self.lock}
        data.update(extra)
        label = f"{name} {state}" + (f" (token {token})" if token is not None else "")
        self.ctx.emit("state", actor=name, label=label, data=data)

    def count(self, name, metric, by=1, series=None):
        """Adds to a client's counter and emits it as a metric (a counter: no x/y)."""
        with self._count_lock:
            key = (name, metric)
            self._counts[key] = self._counts.get(key, 0) + by
            value = self._counts[key]
        data = {"name": metric, "value": value}
        if series:
            data["series"] = series
        self.ctx.emit("metric", actor=name, label=f"{metric} {value}", data=data)
        return value

    def total(self, metric):
        with self._count_lock:
            return sum(v for (_, m), v in self._counts.items() if m == metric)

    # Pauses ----------------------------------------------------------------------------------
    def _check_target(self, target):
        if target not in self.names:
            raise ValueError(f"no client {target!r} in this run (clients: {', '.join(self.names)})")

    def _pause(self, target, **options):
        self._check_target(target)
        with self._gate:
            self._paused.add(target)
        return {"client": target}

    def _resume(self, target, **options):
        self._check_target(target)
        with self._gate:
            self._paused.discard(target)
            self._gate.notify_all()
        return {"client": target}

    def gate(self, name, token=None):
        """Where a client stops while an instructor pauses it (it keeps whatever it holds)."""
        if name not in self._paused:
            return
        self.state(name, "paused", token)
        while True:
            with self._gate:
                if name not in self._paused or self.ctx.cancelled.is_set():
                    break
                self._gate.wait(0.2)
            self.poll()
        self.state(name, "holding" if token is not None else "idle", token)

    def poll(self):
        """A step boundary taken while waiting, at most every 0.2 s: the instructor's commands
        (resume, stop, faults) are read there, even when every client is waiting."""
        now = time.monotonic()
        with self._count_lock:
            if now - self._polled < 0.2:
                return
            self._polled = now
        self.ctx.step()

    def sleep(self, name, seconds, token=None):
        """Time spent in the client's own code (thinking, or a GC pause): it holds what it holds,
        and stops early only when the run is stopped. No step boundary here: pausing the whole run
        to watch it must not stretch a critical section past a lease's TTL (an instructor's pause
        of this client, at the gate, does that on purpose)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.ctx.cancelled.wait(min(left, 0.05)):
                break
            self.gate(name, token)

    # Threads ---------------------------------------------------------------------------------
    def run(self, body, names=None):
        names = list(names or self.names)
        threads = [threading.Thread(target=self._guarded, args=(body, n), name=n, daemon=True) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # A client's own error first: the others only stopped because of it.
        errors = sorted(self.errors, key=lambda e: isinstance(e, RunStopped))
        if errors:
            raise errors[0]

    def _guarded(self, body, name):
        try:
            body(name, self.rngs[name])
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self.errors.append(exc)
            # The others must not wait for a client that is gone.
            self.ctx.cancel(f"{name} failed: {type(exc).__name__}: {exc}", status="failed")
            if not isinstance(exc, RunStopped):
                try:
                    self.state(name, "crashed", error=f"{type(exc).__name__}: {exc}")
                except Exception:  # noqa: BLE001 - the recorder may be gone too
                    pass


def client_names(count):
    return [f"c{i}" for i in range(1, count + 1)]
