"""The recorder: numbers a run's events and hands them, in order and in small batches, to its sinks.

Plain Python (no Django): sinks decide where events go — a list (tests), the console
(`manage.py lab run`), the database and the channel layer (live runs, see sinks.py).

One writer thread per run does all the writing, so events reach every sink in `seq` order. The
writer takes whatever has accumulated since its last write (group commit), and starts a batch at
most every `min_interval` seconds: a lone event after a quiet spell goes out at once, while a steady
stream is grouped into batches, so per-batch costs (a database round trip, a channel-layer publish,
a websocket frame per viewer) stay small next to the events themselves. While the stream never lets
the writer rest, the interval doubles up to `max_interval` (fewer, larger batches: a busy run's
viewers still see its steps within tens of milliseconds); the first quiet moment brings it back,
and `flush()` or `close()` has the waiting events written at once. Each batch is encoded as
JSON at most once (`Batch.json`), however many sinks need it.
"""

import json
import sys
import threading
import time
from collections import deque

KINDS = ("node", "msg", "cmd", "state", "phase", "fault", "metric", "op", "check", "log", "end")

# One encoder for every batch: json.dumps with options builds a new encoder at each call.
encode_json = json.JSONEncoder(separators=(",", ":"), default=str).encode


class Batch(list):
    """Events written together, in seq order. Their JSON text (a list of event objects) is made
    on first use and shared: the database row data and the channel frame are cut from one encoding."""

    _json: str | None = None

    def json(self) -> str:
        if self._json is None:
            self._json = encode_json(self)
        return self._json


class RecorderError(RuntimeError):
    """A sink failed; the run cannot record any more."""


class ListSink:
    def __init__(self):
        self.events = []

    def write(self, events):
        self.events.extend(events)

    def close(self):
        pass


class ConsoleSink:
    """Prints each event: JSON lines, or a short human line."""

    def __init__(self, stream=None, as_json=False):
        self.stream = stream or sys.stdout
        self.as_json = as_json

    def write(self, events):
        lines = []
        for e in events:
            if self.as_json:
                lines.append(encode_json(e))
            else:
                arrow = f" -> {e['to']}" if e.get("to") else ""
                lines.append(f"{e['seq']:>6} {e['t']:>9.1f}ms {e['kind']:<6} {e['actor']}{arrow}  {e['label']}")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def close(self):
        pass


class Recorder:
    def __init__(
        self,
        run_id,
        sinks,
        *,
        start_seq=0,
        max_batch=1000,
        max_pending=20_000,
        min_interval=0.01,
        max_interval=0.05,
        clock=None,
        on_writer_exit=None,
    ):
        self.run_id = run_id
        self.sinks = list(sinks)
        self.seq = start_seq
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.min_interval = min_interval
        self.max_interval = max(min_interval, max_interval)
        self._t0 = time.monotonic()
        self._clock = clock or (lambda: (time.monotonic() - self._t0) * 1000.0)
        self._pending = deque()
        self._cond = threading.Condition()
        self._written = start_seq
        self._closing = False
        self._hurry = False  # someone waits in flush(): write what is pending without waiting
        self._error = None
        self._on_writer_exit = on_writer_exit
        self._writer = threading.Thread(target=self._write_loop, name=f"recorder-{run_id}", daemon=True)
        self._writer.start()

    def emit(self, kind, actor="", to="", label="", data=None, **fields):
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        payload = dict(data or {})
        payload.update(fields)
        with self._cond:
            if self._error:
                raise RecorderError(f"recording failed: {self._error}") from self._error
            if self._closing:
                raise RecorderError("the recorder is closed")
            # Back-pressure: a run may not get more than max_pending events ahead of its sinks.
            while len(self._pending) >= self.max_pending and not self._error:
                self._cond.wait(0.1)
            self.seq += 1
            event = {"v": 1, "run": self.run_id, "seq": self.seq, "t": round(self._clock(), 2), "kind": kind}
            event["actor"] = str(actor)
            if to:
                event["to"] = str(to)
            event["label"] = str(label)
            event["data"] = payload
            self._pending.append(event)
            if len(self._pending) == 1:
                self._cond.notify_all()  # wake the writer; later events find it awake or waiting on purpose
        return event

    def flush(self, timeout=None):
        """Waits until every event emitted so far has been written to every sink."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self.seq
            while self._written < target and not self._error:
                if not self._hurry:  # once: two flushers must not keep waking each other
                    self._hurry = True
                    self._cond.notify_all()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            if self._error:
                raise RecorderError(f"recording failed: {self._error}") from self._error
        return True

    def close(self):
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._writer.join()
        for sink in self.sinks:
            sink.close()
        if self._error:
            raise RecorderError(f"recording failed: {self._error}") from self._error

    def _write_loop(self):
        try:
            self._write_all()
        finally:
            if self._on_writer_exit:
                self._on_writer_exit()

    def _write_all(self):
        began, interval = -self.min_interval, self.min_interval
        while True:
            with self._cond:
                rested = not self._pending
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                interval = self.min_interval if rested else min(2 * interval, self.max_interval)
                while not (self._closing or self._hurry) and (gap := began + interval - time.monotonic()) > 0:
                    self._cond.wait(gap)
                self._hurry = False
                began = time.monotonic()
                if len(self._pending) <= self.max_batch:  # the usual case: take it all at once
                    batch = Batch(self._pending)
                    self._pending.clear()
                else:
                    batch = Batch(self._pending.popleft() for _ in range(self.max_batch))
            try:
                for sink in self.sinks:
                    sink.write(batch)
            except Exception as exc:  # noqa: BLE001 - any sink failure ends the recording
                with self._cond:
                    self._error = exc
                    self._pending.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._written = batch[-1]["seq"]
                self._cond.notify_all()
