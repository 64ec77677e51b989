#!/usr/bin/env python
"""Classroom benchmark: one instructor presenting a live run to a class of websocket followers.

    .venv/bin/python bench/classroom.py [--followers 60] [--frames 200] [--events 20000] [--rate 1000] [--quick]

Starts its own daphne and Celery worker (bench/stream.py's), then, after a short unmeasured run
that warms them up:

1. baseline: a `diagnostics/stream-load` run of `--events` events at `--rate` events/s (0: as
   fast as the engine emits them), with nobody watching;
2. followed: the same run presented to a class: `--followers` students, each holding the
   presentation's socket and the run's own stream, all connected before the run's first event; the
   instructor sends `--frames` view frames (steps, and a scrub every tenth) spread over 90% of the
   baseline's duration, each stamped when sent;
3. baseline again, so that drift on a shared machine shows.

The run's event rate is the worker's own count: `Run.events_count`, which the worker's
database sink updates after every batch it stores, read every 20 ms from the bench's process.
Each follower checks that it got every event 1..N of the run exactly once (gaps, duplicates, out
of order) and every view frame (by the tag each frame carries in `highlight`).

Targets: view-frame delay p99 < 200 ms over every (frame, follower) pair; every follower every
event exactly once; the followed run's rate >= 0.8 x the baselines'. bench/README.md says what is
measured and how. Writes bench/results/classroom.json and the table in bench/README.md (`--quick`
prints the table and leaves the details in a temporary folder). Exits 0 whatever the numbers, 1 when the benchmark could not
run, 3 when a follower did not get every event exactly once.
"""

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import common
import stream
from common import ROOT, ratio
from stream import EVENT_SEQ, BenchError, CpuMeter, connect, quiesce, service_pids, settle, start_platform

CLASS_NAME = "bench classroom"
TARGET_P99_MS = 200.0
TARGET_RATE = 0.8
FINISHED = ("done", "failed", "cancelled")
POLL_EVERY = 0.02  # seconds between reads of the run's stored-event count
CONNECTS_AT_ONCE = 8  # followers' sockets opening together: daphne's handshake timeout is 5 s
SCRUB_EVERY = 10  # every tenth frame scrubs to a random point; the others step by one event


# The class: an instructor (the bench's staff user) and its students ------------------------------


def setup_class(followers):
    """(API token and session of the instructor, the class's id, one session per follower)."""
    token, sessionid = stream.setup_django()  # the `bench` user, staff; migrated
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from apps.classroom.models import Classroom, Membership, Presentation

    users = get_user_model()
    classroom = Classroom.objects.filter(name=CLASS_NAME).first() or Classroom.objects.create(name=CLASS_NAME)
    classroom.instructors.add(users.objects.get(username="bench"))
    # An interrupted benchmark may have left its presentation on.
    Presentation.objects.filter(classroom=classroom, ended_at__isnull=True).update(ended_at=timezone.now())
    sessions = []
    for i in range(1, followers + 1):
        student, _ = users.objects.get_or_create(username=f"bench-student-{i:03d}")
        Membership.objects.get_or_create(classroom=classroom, user=student)
        client = Client()
        client.force_login(student)
        sessions.append(client.cookies["sessionid"].value)
    return token, sessionid, classroom.pk, sessions


# The followers, in a process of their own ------------------------------------------------------


class Tally:
    """Which of a run's events one follower got: `upto` = every seq 1..upto exactly once, in order;
    anything else (a repeat, a seq ahead of its turn) is counted in `extra`. The usual frame is the
    next run of seqs and costs one list comparison."""

    def __init__(self):
        self.upto, self.extra, self.out_of_order = 0, Counter(), 0

    def take(self, seqs):
        if seqs == list(range(self.upto + 1, self.upto + 1 + len(seqs))):
            self.upto += len(seqs)
            return
        for seq in seqs:
            if seq == self.upto + 1 and seq not in self.extra:
                self.upto += 1
                while self.extra.get(self.upto + 1) == 1:  # an early one now in its place
                    del self.extra[self.upto + 1]
                    self.upto += 1
            else:
                self.out_of_order += 1
                self.extra[seq] += 1

    def against(self, n):
        """(missing, duplicates, beyond n) against the run's events 1..n."""
        counts = Counter({s: c for s, c in self.extra.items()})
        beyond = max(0, self.upto - n) + sum(c for s, c in counts.items() if s > n or s < 1)
        in_prefix = min(self.upto, n)
        dups = sum(c for s, c in counts.items() if 1 <= s <= in_prefix)
        later = {s: c for s, c in counts.items() if in_prefix < s <= n}
        dups += sum(c - 1 for c in later.values())
        missing = n - in_prefix - len(later)
        return missing, dups, beyond


async def follower(cfg, i, opening, ready, out):
    """One student: the presentation's socket and the run's stream, read until the run is finished
    and the presentation has ended. `out` collects what the follower saw."""
    ctx = {"sessionid": cfg["sessions"][i], "origin": cfg["origin"]}
    tally, views, errors = Tally(), {}, []
    out.update(tally=tally, views=views, errors=errors, events=0, frames=0, run_status=None, you=None)
    out.update(stored_frames=0, stored_events=0, stored_samples=[])
    got_status, got_presentation = asyncio.Event(), asyncio.Event()

    async def run_stream(ws):
        async for raw in ws:
            if raw.startswith(('{"type":"events"', '{"type": "events"')):
                seqs = [int(s) for s in EVENT_SEQ.findall(raw)]
                # As bench/stream.py does: the regular expression is checked against a full decode
                # now and then, so a change of format shows up as an error, not as wrong numbers.
                if out["frames"] % 32 == 0 and [e["seq"] for e in json.loads(raw)["events"]] != seqs:
                    errors.append("the frame parser disagrees with json.loads")
                out["frames"] += 1
                out["events"] += len(seqs)
                # A frame the consumer encoded itself (json.dumps's spacing) holds events it read
                # from the database; a relayed batch is the worker's compact encoding.
                if raw[8] == " ":
                    out["stored_frames"] += 1
                    out["stored_events"] += len(seqs)
                    if len(out["stored_samples"]) < 5 and seqs:
                        out["stored_samples"].append((seqs[0], len(seqs), out["frames"]))
                tally.take(seqs)
                continue
            frame = json.loads(raw)
            if frame["type"] == "status":
                got_status.set()
                if frame["status"] in FINISHED:  # the consumer sends every event before this
                    out["run_status"] = frame["status"]
                    return
            elif frame["type"] == "error":
                errors.append(f"run stream: {frame}")
                return

    async def presentation(ws):
        async for raw in ws:
            now = time.time()
            frame = json.loads(raw)
            if frame["type"] == "view":
                tag = frame["view"].get("highlight")
                if tag in views:
                    out.setdefault("repeated_views", []).append(tag)
                views[tag] = now
            elif frame["type"] == "presentation":
                out["you"] = frame["you"]
                got_presentation.set()
            elif frame["type"] == "ended":
                return
            else:
                errors.append(f"presentation: {frame}")
                return

    run_ws = pres_ws = None
    tasks = []
    try:
        async with opening:
            run_ws = await connect(ctx, cfg["run_url"], max_size=None, max_queue=None, open_timeout=30)
            pres_ws = await connect(ctx, cfg["presentation_url"], open_timeout=30)
            tasks = [asyncio.create_task(run_stream(run_ws)), asyncio.create_task(presentation(pres_ws))]
            await asyncio.wait_for(asyncio.gather(got_status.wait(), got_presentation.wait()), 30)
        ready.set()
        await asyncio.gather(*tasks)
    except Exception as exc:  # noqa: BLE001 - reported per follower
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        ready.set()
        for task in tasks:
            task.cancel()
        for ws in (run_ws, pres_ws):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()


async def follow_all(conn, cfg):
    opening = asyncio.Semaphore(CONNECTS_AT_ONCE)
    outs = [{} for _ in cfg["sessions"]]
    readies = [asyncio.Event() for _ in cfg["sessions"]]
    began = time.monotonic()
    tasks = [asyncio.create_task(follower(cfg, i, opening, readies[i], outs[i])) for i in range(len(cfg["sessions"]))]
    await asyncio.gather(*(e.wait() for e in readies))
    connected = sum(o.get("you") == "follower" and not o["errors"] for o in outs)
    cpu_ready = time.process_time()
    conn.send({"ready": connected, "connect_s": round(time.monotonic() - began, 2)})
    _, late = await asyncio.wait(tasks, timeout=cfg["timeout"])
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = round(time.process_time() - cpu_ready, 2)
    for task, o in zip(tasks, outs, strict=True):
        if task in late:
            o["errors"].append(f"still reading after {cfg['timeout']:.0f} s")
        o["upto"], o["extra"], o["out_of_order"] = o["tally"].upto, dict(o["tally"].extra), o["tally"].out_of_order
        del o["tally"]
    return {"followers": outs, "cpu_s": cpu}


def followers_main(conn, cfg):
    """The followers' process: everything they saw goes back through `conn` at the end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this process ends
    try:
        conn.send({"result": asyncio.run(follow_all(conn, cfg))})
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


# The run's own pace: its stored-event count, read every 20 ms ---------------------------------


class Poller(threading.Thread):
    """Reads the run's status and `events_count` (the worker's count of events stored) every
    POLL_EVERY seconds until the run is finished (`samples` is (time.monotonic(), count)), and the
    presentation's stored view until `stop` is set."""

    def __init__(self, run_id, timeout, presentation_id=None):
        super().__init__(daemon=True, name=f"poll-{run_id}")
        self.run_id, self.timeout, self.presentation_id = run_id, timeout, presentation_id
        # When each view frame was first seen stored as the presentation's view (time.time()):
        # what the presenter's consumer had done with it before relaying it.
        self.stored_views = {}
        self.samples, self.status, self.count, self.error, self.finished_at = [], None, 0, None, None
        self.started_streaming, self.finished, self.stop = threading.Event(), threading.Event(), threading.Event()

    def run(self):
        from django.db import connection

        from apps.classroom.models import Presentation
        from apps.runs.models import Run

        deadline = time.monotonic() + self.timeout
        try:
            while True:
                if not self.finished.is_set():
                    status, count = Run.objects.filter(pk=self.run_id).values_list("status", "events_count").get()
                    now = time.monotonic()
                    self.samples.append((now, count))
                    self.status, self.count = status, count
                    if count:
                        self.started_streaming.set()
                    if status in FINISHED:
                        self.finished_at = now
                        self.finished.set()
                if self.presentation_id:
                    view = Presentation.objects.filter(pk=self.presentation_id).values_list("view", flat=True).get()
                    self.stored_views.setdefault((view or {}).get("highlight"), time.time())
                # With a presentation, the views are read until the presentation ends.
                if self.finished.is_set() and (not self.presentation_id or self.stop.is_set()):
                    return
                if time.monotonic() > deadline:
                    self.error = f"run {self.run_id} not finished after {self.timeout:.0f} s"
                    return
                time.sleep(POLL_EVERY)
        except Exception as exc:  # noqa: BLE001 - reported by the scenario
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished_at = self.finished_at or time.monotonic()
            self.finished.set()
            self.started_streaming.set()
            connection.close()

    def pace(self):
        """(events/s from the first stored batch to the last, the seconds between them); the
        first batch's events are not counted, as they were stored before the first reading."""
        first = next(((t, c) for t, c in self.samples if c), None)
        if first is None:
            return None, None
        final = self.samples[-1][1]
        last = next(t for t, c in self.samples if c == final)
        span = last - first[0]
        return (round((final - first[1]) / span, 1) if span > 0 else None), round(span, 3)


async def sample_backlog(samples, began, every=0.5):
    """The web process's channel-layer backlog: the messages waiting in Redis for daphne to take
    them (channels_redis keeps one sorted set per process, `<prefix>specific.<id>!`), read every
    `every` s into `samples` as (seconds since `began`, messages). Read-only."""
    import redis.asyncio as aioredis
    from django.conf import settings

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    client = aioredis.Redis.from_url(config["hosts"][0]["address"])
    pattern = f"{config.get('prefix', 'asgi')}specific.*!"
    try:
        while True:
            total = 0
            async for key in client.scan_iter(match=pattern):
                total += await client.zcard(key)
            samples.append((round(time.monotonic() - began, 2), total))
            await asyncio.sleep(every)
    finally:
        await client.aclose()


def emit_rate(run_id):
    """For information: the engine's emit rate from the stored load events' `t` (ms since the
    run's recorder started). Emitting can run up to 20,000 events ahead of storing."""
    from apps.runs.models import Event

    ts = list(Event.objects.filter(run_id=run_id, kind="metric", label="load").values_list("t", flat=True))
    span = (max(ts) - min(ts)) / 1000.0 if ts else 0
    return round((len(ts) - 1) / span, 1) if span > 0 else None


# One run, with or without its class -----------------------------------------------------------


def percentile(sorted_values, p):
    """Nearest rank; inf (a frame a follower never got) sorts last."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def ms(x):
    return None if x is None else ("never" if math.isinf(x) else round(x, 1))


async def present(ws, poller, frames, gap, sent):
    """The instructor's view frames, every `gap` seconds from the run's first stored events:
    steps of one event, and every SCRUB_EVERY-th a scrub to a random point of what is stored, each
    tagged in `highlight` and stamped (time.time()) just before it is sent."""
    rnd, k = random.Random(1), 0
    await asyncio.to_thread(poller.started_streaming.wait)
    began = time.monotonic()
    for i in range(frames):
        if (delay := began + i * gap - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        k = rnd.randint(0, max(1, poller.count)) if i % SCRUB_EVERY == 0 else k + 1
        tag = f"bench-frame-{i}"
        frame = {"action": "view", "k": k, "live": False, "playing": False, "rate": 1.0, "highlight": tag}
        sent[tag] = (time.time(), not poller.finished.is_set())
        await ws.send(json.dumps(frame))


async def presenter_replies(ws, replies):
    """What the server sends the presenter: nothing for a good frame, so every reply is kept (an
    error, or "ended" when the presentation ends)."""
    with contextlib.suppress(Exception):
        async for raw in ws:
            replies.append(json.loads(raw))


async def one_run(ctx, args, followers, gap, log, n=None):
    """A stream-load run queued behind a blocker (diagnostics/ping at 5 steps/s) until everyone
    is connected, as bench/stream.py does; with `followers`, presented to the class."""
    api, port, n = ctx["api"], ctx["port"], n or args.events
    blocker = await asyncio.to_thread(api.create_run, "ping", {"rounds": 200}, 5)
    run_id = await asyncio.to_thread(api.create_run, "stream-load", {"events": n, "rate": args.rate})
    run_url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/?after=0"
    timeout = 120 + n / 500
    proc = parent = pres_ws = reader = sampler = None
    sent, replies, backlog = {}, [], []
    out = {"run": run_id, "followers": followers}
    try:
        if followers:
            code, body = await asyncio.to_thread(
                api.call, "POST", f"/api/classes/{ctx['class']}/present/", {"run": run_id}
            )
            if code != 201:
                raise BenchError(f"POST /api/classes/{ctx['class']}/present/: {code} {body}")
            presentation = body["presentation"]
            cfg = {
                "sessions": ctx["sessions"][:followers],
                "origin": ctx["origin"],
                "run_url": run_url,
                "presentation_url": f"ws://127.0.0.1:{port}{presentation['ws']}",
                "timeout": timeout,
            }
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.get_context("spawn").Process(target=followers_main, args=(child, cfg))
            proc.start()
            child.close()
            if not await asyncio.to_thread(parent.poll, 120):
                raise BenchError("the followers did not connect within 120 s")
            hello = parent.recv()
            if "error" in hello:
                raise BenchError(f"followers: {hello['error']}")
            out["connected"], out["connect_s"] = hello["ready"], hello["connect_s"]
            log(f"  {hello['ready']}/{followers} followers connected in {hello['connect_s']} s")
            pres_ws = await connect(ctx, cfg["presentation_url"], open_timeout=30)
            hello = json.loads(await asyncio.wait_for(pres_ws.recv(), 30))
            if hello.get("you") != "presenter":
                raise BenchError(f"the presenter's socket said {hello}")
            reader = asyncio.create_task(presenter_replies(pres_ws, replies))
        await settle(ctx, run_url)
        pids = service_pids() | {"bench_client": os.getpid()} | ({"followers": proc.pid} if proc else {})
        meter = CpuMeter(ctx["groups"], pids)
        before = meter.sample()
        poller = Poller(run_id, timeout, presentation["id"] if followers else None)
        poller.start()
        sampling = time.monotonic()
        sampler = asyncio.create_task(sample_backlog(backlog, sampling))
        await asyncio.to_thread(api.call, "POST", f"/api/runs/{blocker}/control/", {"action": "stop"})
        if pres_ws:
            await present(pres_ws, poller, args.frames, gap, sent)
        await asyncio.to_thread(poller.finished.wait)
        cpu = meter.since(before)
        if poller.error:
            raise BenchError(poller.error)
        # The run's end as the worker stored it (the poller read it): the API answers from the same
        # database, behind whatever the web process is busy with.
        rate, span = poller.pace()
        out |= {"run_status": poller.status, "run_events": poller.count, "events_per_s": rate, "stored_span_s": span}
        out |= {"emit_events_per_s": await asyncio.to_thread(emit_rate, run_id), "cpu_s": cpu}
        if pres_ws:
            # The presentation ends once the server has dealt with every frame: the presenter's
            # consumer takes frames in order, so a malformed one sent last is answered (an error
            # frame) after all the others were stored and relayed; then daphne's backlog drains.
            marked = time.monotonic()
            await pres_ws.send(json.dumps({"action": "view", "k": -1}))
            answered = await wait_until(lambda: any(r.get("message") == "bad view frame" for r in replies), 60)
            drained = await wait_until(
                lambda: backlog and backlog[-1][0] > answered - sampling and not backlog[-1][1], 60
            )
            out["presenter_consumer_behind_s"] = round(answered - marked, 2) if answered else None
            out["backlog_drained_s"] = round(drained - marked, 2) if drained else None
            end = f"/api/presentations/{presentation['id']}/end/"
            code, body = await asyncio.to_thread(api.call, "POST", end, None, 60)
            if code != 200:
                raise BenchError(f"POST {end}: {code} {body}")
            if not await asyncio.to_thread(parent.poll, timeout):
                raise BenchError(f"the followers did not report within {timeout:.0f} s")
            got = parent.recv()
            if "error" in got:
                raise BenchError(f"followers: {got['error']}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader, 10)  # until the server closes the presenter's socket too
            poller.stop.set()
            out |= followed_summary(got["result"], sent, poller.count, replies, poller.stored_views)
        sampler.cancel()
        out["channel_backlog"] = {
            "max": max((b for _, b in backlog), default=None),
            "at_run_end": backlog_at(backlog, poller.finished_at - sampling),
            "samples": backlog,
        }
        return out
    finally:
        for task in (reader, sampler):
            if task is not None:
                task.cancel()
        if pres_ws is not None:
            with contextlib.suppress(Exception):
                await pres_ws.close()
        if proc is not None:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.terminate()
                await asyncio.to_thread(proc.join, 5)
        if parent is not None:
            parent.close()


async def wait_until(condition, timeout):
    """time.monotonic() when condition() first held, or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        await asyncio.sleep(0.05)
    return None


def backlog_at(samples, t):
    """The backlog sampled nearest to t seconds."""
    return min(samples, key=lambda s: abs(s[0] - t))[1] if samples else None


def followed_summary(result, sent, n, replies, stored_views):
    """View-frame delays over every (frame, follower) pair; each follower's events against 1..n."""
    from apps.classroom.presenting import ALREADY_ENDED

    delays, missing_views, repeated_views = [], 0, 0
    during = sum(live for _, live in sent.values())
    per = []
    for f in result["followers"]:
        views = f["views"]
        for tag, (at, _) in sent.items():
            if tag in views:
                delays.append((views[tag] - at) * 1000.0)
            else:
                missing_views += 1
                delays.append(math.inf)
        repeated_views += len(f.get("repeated_views", []))
        # Tally's parts, rebuilt from what came back through the pipe.
        t = Tally()
        t.upto, t.extra = f["upto"], Counter({int(s): c for s, c in f["extra"].items()})
        missing, dups, beyond = t.against(n)
        per.append({
            "events": f["events"], "missing": missing, "duplicates": dups, "beyond": beyond,
            "out_of_order": f["out_of_order"], "run_status": f["run_status"], "errors": f["errors"][:3],
            "views": len(views), "events_from_database": f["stored_events"], "frames": f["frames"],
            "from_database_first": f["stored_samples"],  # (first seq, events, frames so far)
        })  # fmt: skip
    per_frame = []
    for tag, (at, _) in sent.items():
        got = sorted((f["views"][tag] - at) * 1000.0 for f in result["followers"] if tag in f["views"])
        per_frame.append([int(tag.rsplit("-", 1)[1]), len(got), got and round(got[len(got) // 2], 1)])
    delivered = sorted(d for d in delays if not math.isinf(d))
    # Sent -> stored as the presentation's view (the presenter's consumer, before it relays).
    stored = sorted((stored_views[tag] - at) * 1000.0 for tag, (at, _) in sent.items() if tag in stored_views)
    delays.sort()
    complete = sum(p["missing"] == p["duplicates"] == p["beyond"] == 0 and p["run_status"] is not None for p in per)
    return {
        "frames_sent": len(sent),
        "frames_sent_while_streaming": during,
        "view_pairs": len(delays),
        "view_delay_ms": {p: ms(percentile(delays, q)) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}
        | {"max": ms(delays[-1] if delays else None)},
        "delivered_delay_ms": {p: ms(percentile(delivered, q)) for p, q in (("p50", 50), ("p99", 99))}
        | {"max": ms(delivered[-1] if delivered else None)},
        "stored_delay_ms": {p: ms(percentile(stored, q)) for p, q in (("p50", 50), ("p99", 99))}
        | {"max": ms(stored[-1] if stored else None), "frames_seen": len(stored)},
        "per_frame": per_frame,  # [frame, followers that got it, their median delay ms]
        "views_missing": missing_views,
        "views_repeated": repeated_views,
        # Frames the presenter's consumer took only after the presentation had ended: never relayed.
        "frames_refused_as_ended": sum(r.get("message") == ALREADY_ENDED for r in replies),
        "presenter_errors": sorted(
            {r.get("message", "") for r in replies if r.get("type") == "error" and r.get("message") != "bad view frame"}
        )[:5],
        "followers_exactly_once": complete,
        "events_missing": sum(p["missing"] for p in per),
        "events_duplicated": sum(p["duplicates"] for p in per),
        "events_beyond_n": sum(p["beyond"] for p in per),
        "events_out_of_order": sum(p["out_of_order"] for p in per),
        "follower_errors": sorted({e for p in per for e in p["errors"]})[:5],
        "followers_cpu_s": result["cpu_s"],
        "events_from_database": sum(p["events_from_database"] for p in per),
        "views_per_follower": sorted(Counter(p["views"] for p in per).items()),
        "per_follower": per,
    }


async def measure(ctx, args, log):
    res, gap = {}, None
    # A first, short run that is not measured: the worker's and daphne's first run pays for
    # imports, connections and caches.
    await one_run(ctx, args, 0, None, log, n=min(args.events, 2000))
    plan = [("baseline", 0), ("followed", args.followers)] + ([] if args.quick else [("baseline_after", 0)])
    for key, followers in plan:
        quiet = await quiesce(ctx)
        if followers:
            # Spread over the baseline's stored span (90% of it): the followed run takes at least as long.
            span = res["baseline"]["stored_span_s"] or 1.0
            gap = 0.9 * span / max(1, args.frames)
            log(f"{key}: {args.events:,} events, {followers} followers, {args.frames} frames {gap * 1000:.0f} ms apart")
        else:
            log(f"{key}: {args.events:,} events, nobody following")
        s = res[key] = await one_run(ctx, args, followers, gap, log)
        s["waited_for_quiet_s"] = quiet
        if followers:
            s["frame_gap_ms"] = round(gap * 1000, 1)
        log(
            f"  run {s['run']} {s['run_status']}: {s['events_per_s']} events/s stored ({s['emit_events_per_s']} emitted)"
        )
        if followers:
            log(f"  view delay {s['view_delay_ms']}, missing {s['views_missing']}; exactly once "
                f"{s['followers_exactly_once']}/{followers} (missing {s['events_missing']}, "
                f"duplicated {s['events_duplicated']}); followers' CPU {s['followers_cpu_s']} s")  # fmt: skip
            log(f"  views per follower (views, followers) {s['views_per_follower']}; events read from the "
                f"database {s['events_from_database']:,}; errors {s['follower_errors']} {s['presenter_errors']}")  # fmt: skip
        b = s["channel_backlog"]
        log(f"  channel-layer backlog for daphne: max {b['max']}, at the run's end {b['at_run_end']}")
        if followers:
            log(f"  sent -> stored as the view {s['stored_delay_ms']}; delivered pairs {s['delivered_delay_ms']}; "
                f"presenter's consumer {s['presenter_consumer_behind_s']} s behind, "
                f"refused as ended {s['frames_refused_as_ended']}")  # fmt: skip
        log(f"  cpu-s {s['cpu_s']}")
    return res


# Report ----------------------------------------------------------------------------------------


def fmt(x, nd=0):
    if x is None:
        return "–"
    return x if isinstance(x, str) else f"{x:,.{nd}f}"


def build_report(args, res, meta):
    f = res["followed"]
    bases = [res[k]["events_per_s"] for k in ("baseline", "baseline_after") if k in res and res[k]["events_per_s"]]
    base = sum(bases) / len(bases) if bases else None
    rate_ratio = ratio(f["events_per_s"], base)
    p99 = f["view_delay_ms"]["p99"]
    p99_ok = isinstance(p99, float | int) and p99 < TARGET_P99_MS
    once = f["followers_exactly_once"] == args.followers and f["events_duplicated"] == f["events_missing"] == 0
    targets = [  # what, value as shown, met
        (
            f"view-frame delay p99 < {TARGET_P99_MS:.0f} ms ({f['view_pairs']:,} frame × follower pairs)",
            f"{fmt(p99, 1)} ms",
            p99_ok,
        ),
        (
            f"every follower every event exactly once ({args.followers} × {fmt(f['run_events'])} events)",
            f"{f['followers_exactly_once']}/{args.followers}; missing {f['events_missing']}, "
            f"duplicated {f['events_duplicated']}",
            once,
        ),
        (
            f"run's rate with followers ≥ {TARGET_RATE} × without",
            f"{fmt(rate_ratio, 2)}× ({fmt(f['events_per_s'])} vs {fmt(base)} events/s)",
            (rate_ratio or 0) >= TARGET_RATE,
        ),
    ]
    return {
        "when": common.stamp(),
        "machine": common.machine(load_average_end=common.load()),
        "events": args.events,
        "rate": args.rate,
        "followers": args.followers,
        "frames": args.frames,
        "settings": meta,
        "baseline_events_per_s": base and round(base, 1),
        "rate_ratio": rate_ratio,
        "exactly_once": once,
        "targets": [dict(zip(("target", "value", "met"), t, strict=True)) for t in targets],
        "scenarios": res,
    }


def table(report):
    res = report["scenarios"]
    pace = f"{report['rate']:,} events/s" if report["rate"] else "as fast as the engine goes"
    lines = [
        f"diagnostics/stream-load, {report['events']:,} events at {pace}; "
        f"{report['followers']} followers, {report['frames']} view frames; {report['machine']['cores']} cores, "
        f"load average {report['machine']['load_average_end']} at the end; {report['when']}",
        "",
        "| run | followers | events/s stored (worker's count) | events/s emitted | CPU-s daphne / worker / followers / other jobs |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, s in res.items():
        cpu = s["cpu_s"]
        who = f"{cpu.get('daphne', 0):.1f} / {cpu.get('celery', 0):.1f} / {cpu.get('followers', 0):.1f}"
        who += f" / {cpu.get('other_processes', 0):.1f}"
        lines.append(
            f"| {key.replace('_', ' ')} (run {s['run']}) | {s['followers']} | {fmt(s['events_per_s'])} "
            f"| {fmt(s['emit_events_per_s'])} | {who} |"
        )
    f = res["followed"]
    d, got, st = f["view_delay_ms"], f["delivered_delay_ms"], f["stored_delay_ms"]
    lines += [
        "",
        f"View frames: {f['frames_sent']} sent {fmt(f['frame_gap_ms'])} ms apart "
        f"({f['frames_sent_while_streaming']} while the run streamed). Delay from sending to each follower, "
        f"over {f['view_pairs']:,} frame × follower pairs: p50 {fmt(d['p50'], 1)} / p95 {fmt(d['p95'], 1)} / "
        f"p99 {fmt(d['p99'], 1)} / max {fmt(d['max'], 1)} ms (never: not received); "
        f"{f['views_missing']:,} pairs missing, {f['views_repeated']} repeated; the pairs received "
        f"p50 {fmt(got['p50'], 1)} / p99 {fmt(got['p99'], 1)} ms. Of that, sending to stored as the "
        f"presentation's view (the presenter's consumer, before it relays; {st['frames_seen']} frames seen): "
        f"p50 {fmt(st['p50'], 1)} / p99 {fmt(st['p99'], 1)} ms. After the last frame the presenter's consumer "
        f"was {fmt(f['presenter_consumer_behind_s'], 2)} s behind; {f['frames_refused_as_ended']} frames "
        f"reached it only after the presentation had ended. Daphne's channel-layer backlog: max "
        f"{fmt(f['channel_backlog']['max'])} messages. The followers' run consumers sent "
        f"{f['events_from_database']:,} of the {f['followers'] * f['run_events']:,} events from the database "
        f"rather than from the channel layer (catching up: a consumer whose messages lag behind finds the "
        f"run further on when it looks); {f['events_out_of_order']} out of order. Followers connected "
        f"in {f['connect_s']} s.",
        "",
        "| target | value | met |",
        "|---|---:|---|",
    ]
    lines += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in report["targets"]]
    errors = f["follower_errors"] + [str(e) for e in f["presenter_errors"]]
    lines += [f"\nErrors: {'; '.join(errors)}"] if errors else []
    return "\n".join(lines)


# Main ------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, help="students following (default 60; 10 with --quick)")
    parser.add_argument("--frames", type=int, help="view frames the instructor sends (default 200; 20 with --quick)")
    parser.add_argument("--events", type=int, help="events in the run (default 20000; 5000 with --quick)")
    parser.add_argument("--rate", type=int, default=1000, help="the run's events per second; 0 is as fast as it goes")
    parser.add_argument("--quick", action="store_true", help="a short smoke run; prints the table, writes nothing")
    args = parser.parse_args()
    quick = args.quick
    args.followers = args.followers if args.followers is not None else (10 if quick else 60)
    args.frames = args.frames if args.frames is not None else (20 if quick else 200)
    args.events = args.events if args.events is not None else (5_000 if quick else 20_000)
    if args.followers < 1 or args.frames < 1 or not 1 <= args.events <= 200_000 or args.rate < 0:
        parser.error("--followers and --frames must be 1 or more, --events 1 to 200000, --rate 0 or more")
    log = common.logger("classroom")
    common.exit_on_sigterm()  # daphne and the worker stop too
    started = time.monotonic()
    # The daphne and worker it starts use these settings: so must this process (the same broker
    # and channel layer), whatever the environment says.
    os.environ["DJANGO_SETTINGS_MODULE"] = common.SETTINGS
    token, sessionid, class_id, sessions = setup_class(args.followers)
    from django.conf import settings

    services = []
    try:
        api, port, logdir, others = start_platform("classroom", token, services, log)
        groups = {svc.name: svc.proc.pid for svc in services}
        ctx = {"api": api, "port": port, "origin": f"http://127.0.0.1:{port}", "sessionid": sessionid}
        ctx |= {"class": class_id, "sessions": sessions, "groups": groups, "cpu": CpuMeter(groups, {})}
        res = asyncio.run(measure(ctx, args, log))
    except (BenchError, OSError) as exc:  # OSError: a request to daphne timed out
        log(f"error: {exc}")
        for svc in services:
            log(f"--- {svc.name} log tail ---\n{svc.tail()}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        for svc in services:
            svc.stop()
    meta = {"debug": settings.DEBUG, "worker": "celery prefork, 1 process", "asgi": "daphne, 1 process"}
    meta |= {"followers_process": "one process (multiprocessing, spawn), asyncio, websockets"}
    meta |= {"other_workers_on_broker": others, "runtime_s": round(time.monotonic() - started, 1)}
    report = build_report(args, res, meta)
    if quick:
        print(table(report))
        details = Path(logdir) / "classroom.json"
        details.write_text(json.dumps(report, indent=2) + "\n")
        log(f"details in {details}")
    else:
        path = common.publish("classroom", report, table)
        log(f"results in {path.relative_to(ROOT)} ({meta['runtime_s']} s)")
    return 0 if report["exactly_once"] else 3


if __name__ == "__main__":
    sys.exit(main())
