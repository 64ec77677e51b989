"""Diagnosis only (bench/stream.py --probe-daphne FILE): the DistLab ASGI application with timers
around the run stream's hot paths, so a benchmark can say where daphne's time goes.

Nothing here changes behaviour: each wrapper calls the original and adds its wall and thread-CPU
time to a counter. At exit the counters and the CPU time of every thread go to $BENCH_PROBE_OUT.
With $BENCH_WHATIF containing `encode_once`, it also tries the change proposed for the consumer
(see the end of this file).
"""

import atexit
import functools
import json
import os
import threading
import time
from collections import defaultdict

from channels.db import database_sync_to_async

from labsite.asgi import application  # noqa: F401 - what daphne serves; sets Django up  # isort: skip
from apps.runs import consumers  # noqa: E402  # isort: skip

STATS = defaultdict(lambda: {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0, "items": 0})
_lock = threading.Lock()


def _add(name, wall, cpu, items=0):
    with _lock:
        s = STATS[name]
        s["calls"] += 1
        s["wall_s"] += wall
        s["cpu_s"] += cpu
        s["items"] += items


def _timed(name, fn, items=None):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        w, c = time.perf_counter(), time.thread_time()
        result = fn(*args, **kwargs)
        _add(name, time.perf_counter() - w, time.thread_time() - c, items(result) if items else 0)
        return result

    return wrapper


def _timed_async(name, fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        w = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - w, 0.0)

    return wrapper


TIMELINE = []  # (wall start, wall end, name, items) of the first calls, to line up with the run


def _traced(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.time()
        result = fn(*args, **kwargs)
        if len(TIMELINE) < 400:
            TIMELINE.append(
                (round(start, 4), round(time.time(), 4), name, len(result) if isinstance(result, list) else None)
            )
        return result

    return wrapper


C = consumers.RunConsumer
# Database work, run in the sync-to-async thread pool.
C.stored_events = database_sync_to_async(
    _traced("stored_events", _timed("db.stored_events", C.__dict__["stored_events"].func, items=len))
)
C.get_run = database_sync_to_async(_traced("get_run", _timed("db.get_run", C.__dict__["get_run"].func)))
consumers.reap_stale_runs = _timed("db.reap_stale_runs (watch)", consumers.reap_stale_runs, items=len)
# JSON encoding of every frame, in the event loop.


async def _encode_json(cls, content):
    w, c = time.perf_counter(), time.thread_time()
    text = json.dumps(content)
    events = content.get("events")
    _add(
        "loop.encode_json",
        time.perf_counter() - w,
        time.thread_time() - c,
        len(events) if isinstance(events, list) else 0,
    )
    return text


C.encode_json = classmethod(_encode_json)
# Whole handlers (wall, including awaits).
C.run_events = _timed_async("handler.run_events", C.run_events)
C.send_stored = _timed_async("handler.send_stored", C.send_stored)
_orig_run_events = C.run_events


async def _gap_counting(self, message):
    events = message["events"]
    if events and events[0]["seq"] > self.last_seq + 1 and events[-1]["seq"] > self.last_seq:
        _add("gap.refills_from_db", 0.0, 0.0, events[0]["seq"] - 1 - self.last_seq)
    _add("events.in_batches", 0.0, 0.0, len(events))
    return await _orig_run_events(self, message)


C.run_events = _gap_counting

# The channel layer's message decoding (msgpack), once per message per process.
from channels_redis.core import RedisChannelLayer  # noqa: E402

RedisChannelLayer.deserialize = _timed("layer.deserialize", RedisChannelLayer.deserialize)


def _threads_cpu():
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(rest[11]) + int(rest[12])) / tick
        name = names.get(int(tid), f"thread {tid}")
        if int(tid) == os.getpid():
            name = "main (event loop)"
        key = name.rsplit("_", 1)[0] if name.startswith("ThreadPoolExecutor") else name
        out[key] = round(out.get(key, 0.0) + cpu, 2)
    return out


_dead_threads_cpu = defaultdict(float)


def _dump():
    path = os.environ.get("BENCH_PROBE_OUT")
    if not path:
        return
    with _lock:
        stats = {
            k: {kk: round(vv, 4) if isinstance(vv, float) else vv for kk, vv in v.items()} for k, v in STATS.items()
        }
    with open(path, "w") as f:
        json.dump({"stats": stats, "threads_cpu_s": _threads_cpu(), "timeline": TIMELINE}, f)


atexit.register(_dump)


def _periodic():
    # Threads can end before exit; snapshot often so their CPU is not lost from the report.
    while True:
        time.sleep(1.0)
        _dump()


threading.Thread(target=_periodic, name="bench-probe", daemon=True).start()


# What-if (bench/stream.py --whatif encode_once): the change proposed for the consumer, tried without
# editing it. channels_redis hands the same message dict to every consumer of this process, so the
# frame text is encoded once per batch and per process instead of once per viewer.
def _whatif():
    return {w.split("=")[0] for w in os.environ.get("BENCH_WHATIF", "").split(",") if w}


if "encode_once" in _whatif():
    _counting_run_events = C.run_events

    async def _run_events_encode_once(self, message):
        events = message["events"]
        if events and events[0]["seq"] == self.last_seq + 1:
            text = message.get("_frame_text")
            if text is None:
                w, c = time.perf_counter(), time.thread_time()
                text = message["_frame_text"] = json.dumps({"type": "events", "events": events})
                _add("loop.encode_once", time.perf_counter() - w, time.thread_time() - c, len(events))
            _add("events.in_batches", 0.0, 0.0, len(events))
            self.last_seq = events[-1]["seq"]
            await self.send(text_data=text)
            return
        await _counting_run_events(self, message)

    C.run_events = _run_events_encode_once
