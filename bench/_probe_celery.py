"""Diagnosis only (bench/stream.py --probe-worker FILE): the DistLab Celery app with timers around
the recorder's sinks, so a benchmark can say where a run's writer thread spends its time.

Nothing here changes behaviour: each sink write is timed (wall and thread CPU) and counted, per
batch size bucket, and the counters go to $BENCH_PROBE_WORKER_OUT (rewritten every second by the
process that runs the tasks, since a pool child may not run exit handlers).
"""

import json
import os
import threading
import time
from collections import defaultdict

from celery.signals import worker_process_init

from labsite.celery import app  # noqa: F401 - what the worker runs

STATS = defaultdict(lambda: {"batches": 0, "events": 0, "wall_s": 0.0, "cpu_s": 0.0})
_lock = threading.Lock()
_dumper = {"pid": None}


def _bucket(n):
    for top in (1, 3, 10, 30, 100, 300, 1000):
        if n <= top:
            return f"<={top}"
    return ">1000"


def _add(name, n, wall, cpu):
    with _lock:
        for key in (name, f"{name} [{_bucket(n)} events]"):
            s = STATS[key]
            s["batches"] += 1
            s["events"] += n
            s["wall_s"] += wall
            s["cpu_s"] += cpu
    if _dumper["pid"] != os.getpid():
        _dumper["pid"] = os.getpid()
        threading.Thread(target=_periodic, name="bench-probe", daemon=True).start()


def _wrap(cls, name):
    original = cls.write

    def write(self, events):
        w, c = time.perf_counter(), time.thread_time()
        try:
            return original(self, events)
        finally:
            _add(name, len(events), time.perf_counter() - w, time.thread_time() - c)

    cls.write = write


def _whatif():
    out = {}
    for item in os.environ.get("BENCH_WHATIF", "").split(","):
        if item:
            key, _, value = item.partition("=")
            out[key] = value
    return out


@worker_process_init.connect
def _install(**kwargs):
    # In the pool process, once Django is set up (the sinks import the models).
    from apps.runs import recorder, sinks

    whatif = _whatif()
    if "raw_insert" in whatif:
        sinks.DatabaseSink.write = _raw_insert_write
    if "batch_interval_ms" in whatif:
        recorder.Recorder._write_all = _make_paced_write_all(float(whatif["batch_interval_ms"]) / 1000.0)
    _wrap(sinks.DatabaseSink, "DatabaseSink.write")
    _wrap(sinks.ChannelSink, "ChannelSink.write")


# What-if patches (bench/stream.py --whatif ...): the changes proposed for the recorder and its
# database sink, tried without editing them.


def _raw_insert_write(self, events):
    """DatabaseSink.write as one multi-row INSERT through the cursor (PyMySQL's executemany), not
    bulk_create: the same rows, without the ORM's per-field work."""
    from django.db import connection

    from apps.runs.models import Event, Run

    table, run_table = Event._meta.db_table, Run._meta.db_table
    rows = [
        (
            self.run_id,
            e["seq"],
            e["t"],
            e["kind"],
            e["actor"][:80],
            e.get("to", "")[:80],
            e["label"][:500],
            json.dumps(e["data"]),
        )
        for e in events
    ]
    with connection.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {table} (run_id, seq, t, kind, actor, `to`, label, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        cur.execute(f"UPDATE {run_table} SET events_count = %s WHERE id = %s", [events[-1]["seq"], self.run_id])


def _make_paced_write_all(interval):
    """Recorder._write_all that starts a batch at most every `interval` seconds: an event that comes
    after a quiet spell still goes out at once, and a steady stream is grouped into fewer, larger
    batches (fewer commits, group_sends and channel-layer messages per event)."""

    def _write_all(self):
        last_write = 0.0
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                while not self._closing and len(self._pending) < self.max_batch:
                    remaining = last_write + interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            last_write = time.monotonic()
            try:
                for sink in self.sinks:
                    sink.write(batch)
            except Exception as exc:  # noqa: BLE001 - as in the original
                with self._cond:
                    self._error = exc
                    self._pending.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._written = batch[-1]["seq"]
                self._cond.notify_all()

    return _write_all


def _dump():
    path = os.environ.get("BENCH_PROBE_WORKER_OUT")
    if not path:
        return
    with _lock:
        stats = {}
        for key, s in sorted(STATS.items()):
            row = dict(s)
            row["ms_per_batch"] = round(1000 * s["wall_s"] / s["batches"], 3) if s["batches"] else None
            row["us_per_event"] = round(1e6 * s["wall_s"] / s["events"], 1) if s["events"] else None
            row["wall_s"], row["cpu_s"] = round(s["wall_s"], 3), round(s["cpu_s"], 3)
            stats[key] = row
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(stats, f, indent=2)
    os.replace(tmp, path)


def _periodic():
    while True:
        time.sleep(0.5)
        _dump()
