#!/usr/bin/env python
"""Stream benchmark: how fast, and how soon, a run's events reach its websocket viewers.

    bin/dev bench                       (services on the test ports, then this script)
    .venv/bin/python bench/stream.py [--events N] [--viewers 50] [--paced-events 5000]
    diagnosis: [--only SCENARIO ...] [--probe-daphne F] [--probe-worker F] [--profile-daphne F]
               [--whatif CHANGE ...]             (see bench/README.md)

What it measures, all in one process run, against the real stack:
  * platform: the `diagnostics/stream-load` scenario run by a real Celery worker (prefork, one
    process), recorded through the DatabaseSink and the ChannelSink (channels_redis), served by a
    real daphne to `websockets` clients logged in with a session cookie;
      (a) 1 viewer, N events as fast as possible; (b) 50 viewers, the same; (c) 1 viewer, 5000
      events paced at 1000 events/s (the latency target);
  * baseline: the same event dicts, JSON-encoded, one PUBLISH per event (no pipelining, like one
    emit per event) on the control Redis, channel `bench:baseline`, to 1 and to 50 redis.asyncio
    subscribers, and paced at 1000 events/s to 1 subscriber.

Every viewer/subscriber checks exactly-once, in-order delivery (contiguous seq, every load event).
Rates are per viewer, "from first to last load event received": (events received after the first
arrival) / (time from the first arrival to the last). Latency is receive wall time minus the
event's `data.wall` (time.time() at emit), per event; a frame's events all share its receive time.

Viewers are connected before the first event is emitted: the run under test is queued behind a
"blocker" run (diagnostics/ping, slowed to 5 steps/s) that is stopped once every viewer has its
first status frame (and once one more connection has got its own, so every viewer's backlog
query is over); a viewer whose first status is not `queued` is flagged in the JSON. Between
scenarios the script waits until daphne and the worker are idle.

Writes bench/results/stream.json, prints a markdown table and refreshes the table in
bench/README.md. Exits 0 whatever the numbers (targets are reported, not enforced), non-zero when
the benchmark itself could not run.
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "stream.json"
README = ROOT / "bench" / "README.md"
BASELINE_CHANNEL = "bench:baseline"
BENCH_USER = "bench"
TABLE_BEGIN = "<!-- stream:begin (written by bench/stream.py) -->"
TABLE_END = "<!-- stream:end -->"

TARGETS = {
    "one_viewer_vs_baseline": 0.5,  # 1 viewer's events/s >= 0.5 x the raw Redis 1-subscriber rate
    "fifty_vs_one_viewer": 0.5,  # the slowest of 50 viewers >= 0.5 x the 1-viewer rate
    "paced_p99_ms": 100.0,  # emit-to-receive p99 at 1,000 events/s, 1 viewer
}


# ---------------------------------------------------------------------------------------------
# Measuring one receiver (a websocket viewer or a Redis subscriber)
# ---------------------------------------------------------------------------------------------


# json.dumps layouts with or without spaces after ":" and ",".
EVENT_SEQ = re.compile(r'\{"v": ?1, ?"run": ?-?\d+, ?"seq": ?(\d+),')
LOAD_WALL = re.compile(r'"data": ?\{"name": ?"load", ?"i": ?\d+, ?"wall": ?([-+0-9.eE]+)\}')


class Receiver:
    """Counts load events, their latency, and any break of exactly-once in-order delivery."""

    MAX_REPORTED = 10

    def __init__(self, n_load):
        self.n_load = n_load
        self.last_seq = 0
        self.next_i = 1
        self.got = 0  # load events received
        self.frames = 0  # frames (or messages) carrying at least one event
        self.first_recv = None
        self.first_frame_loads = 0
        self.last_recv = None
        self.latency = array("d")  # seconds, per load event
        self.emitted = array("d")  # data.wall of each load event, to place slow stretches in time
        self.violations = 0
        self.violation_samples = []
        self.first_status = None
        self.final_status = None
        self.error = None
        self.extensions = None
        self.text_frames = 0

    @property
    def done(self):
        return self.got >= self.n_load

    def _violation(self, what):
        self.violations += 1
        if len(self.violation_samples) < self.MAX_REPORTED:
            self.violation_samples.append(what)

    def take(self, events, now):
        """One batch of event dicts (a websocket frame, or one Redis message)."""
        seqs = [e["seq"] for e in events]
        loads = [
            (e["data"]["i"], e["data"]["wall"])
            for e in events
            if e.get("kind") == "metric" and isinstance(e.get("data"), dict) and e["data"].get("name") == "load"
        ]
        for i, _ in loads:
            if i != self.next_i:
                self._violation(f"load i {i} where {self.next_i} was expected")
            self.next_i = max(self.next_i, i + 1)
        self._take(seqs, [w for _, w in loads], now)

    def take_text(self, text, now):
        """One `events` frame, read with two regular expressions instead of json.loads.

        50 viewers in one client process would otherwise spend about as much CPU decoding JSON as
        the server spends encoding it, on the same two cores. The patterns anchor on the event
        layout (keys v, run, seq first; data name, i, wall), and every 32nd frame is also decoded in
        full and compared, so a change of format shows up as violations, not as wrong numbers.
        Exactly-once and in-order rest on seq, which is checked for every event either way.
        """
        seqs = list(map(int, EVENT_SEQ.findall(text)))
        walls = list(map(float, LOAD_WALL.findall(text)))
        self.text_frames += 1
        if not seqs or self.text_frames % 32 == 1:
            events = json.loads(text)["events"]
            if not seqs:
                self.take(events, now)
                return
            full_walls = [e["data"]["wall"] for e in events if isinstance(e.get("data"), dict)
                          and e["data"].get("name") == "load" and e.get("kind") == "metric"]  # fmt: skip
            if [e["seq"] for e in events] != seqs or full_walls != walls:
                self._violation("the fast frame parser disagrees with json.loads")
        self._take(seqs, walls, now)

    def _take(self, seqs, walls, now):
        if seqs != list(range(self.last_seq + 1, self.last_seq + 1 + len(seqs))):
            for seq in seqs:
                if seq != self.last_seq + 1:
                    self._violation(f"seq {seq} after {self.last_seq}")
                self.last_seq = max(self.last_seq, seq)
        elif seqs:
            self.last_seq = seqs[-1]
        if not walls:
            return
        self.emitted.extend(walls)
        self.latency.extend([now - w for w in walls])
        self.frames += 1
        self.got += len(walls)
        if self.first_recv is None:
            self.first_recv = now
            self.first_frame_loads = len(walls)
        self.last_recv = now

    def stalls(self, threshold_ms=50.0, limit=10):
        """Stretches of events whose latency passed threshold_ms: when (s after the first emit), how
        many events, and the worst latency — so a p99 can be traced to a moment."""
        out, cur = [], None
        t0 = self.emitted[0] if self.emitted else 0.0
        for wall, lat in zip(self.emitted, self.latency, strict=True):
            ms = lat * 1000.0
            if ms >= threshold_ms:
                if cur is None:
                    cur = {"at_s": round(wall - t0, 3), "events": 0, "worst_ms": 0.0}
                cur["events"] += 1
                cur["worst_ms"] = round(max(cur["worst_ms"], ms), 1)
            elif cur is not None:
                out.append(cur)
                cur = None
        if cur is not None:
            out.append(cur)
        return sorted(out, key=lambda c: -c["worst_ms"])[:limit]

    def summary(self):
        span = (self.last_recv - self.first_recv) if self.first_recv is not None else 0.0
        after_first = self.got - self.first_frame_loads
        rate = after_first / span if span > 0 else None
        lat_ms = sorted(x * 1000.0 for x in self.latency)
        out = {
            "received": self.got,
            "expected": self.n_load,
            "complete": self.got == self.n_load,
            "events_per_s": _round(rate, 1),
            "span_s": round(span, 4),
            "frames": self.frames,
            "events_per_frame": round(self.got / self.frames, 1) if self.frames else None,
            "p50_ms": _round(_pct(lat_ms, 50), 2),
            "p99_ms": _round(_pct(lat_ms, 99), 2),
            "max_ms": _round(lat_ms[-1] if lat_ms else None, 2),
            "violations": self.violations + (0 if self.got == self.n_load else 1),
        }
        samples = list(self.violation_samples)
        if self.got != self.n_load:
            samples.append(f"received {self.got} of {self.n_load} load events")
        if samples:
            out["violation_samples"] = samples
        if self.first_status is not None:
            out["first_status"] = self.first_status
        if self.error:
            out["error"] = self.error
        return out


def _pct(sorted_values, p):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _round(x, nd):
    return None if x is None else round(x, nd)


def group_summary(receivers, wall_started=None):
    """Per-receiver rates (min/median/max) and latency percentiles over every event of every receiver."""
    per = [r.summary() for r in receivers]
    # Rates of the receivers that got every event; the ones that did not are counted in
    # `complete` and `violations` (a dead viewer has no rate to speak of).
    rates = [p["events_per_s"] for p in per if p["events_per_s"] is not None and p["complete"]]
    all_lat = sorted(x * 1000.0 for r in receivers for x in r.latency)
    out = {
        "receivers": len(receivers),
        "per_receiver_events_per_s": {
            "min": _round(min(rates), 1) if rates else None,
            "median": _round(statistics.median(rates), 1) if rates else None,
            "max": _round(max(rates), 1) if rates else None,
        },
        "p50_ms": _round(_pct(all_lat, 50), 2),
        "p99_ms": _round(_pct(all_lat, 99), 2),
        "max_ms": _round(all_lat[-1] if all_lat else None, 2),
        "events_per_frame_median": _round(statistics.median([p["events_per_frame"] or 0 for p in per]), 1),
        "complete": sum(1 for p in per if p["complete"]),
        "violations": sum(p["violations"] for p in per),
    }
    samples = [s for p in per for s in p.get("violation_samples", [])][:10]
    if samples:
        out["violation_samples"] = samples
    errors = [p["error"] for p in per if p.get("error")][:5]
    if errors:
        out["errors"] = errors
    return out, per


# ---------------------------------------------------------------------------------------------
# CPU accounting from /proc, to show where the time went
# ---------------------------------------------------------------------------------------------

CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    # fields after ")": state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
    return int(rest[2]), (int(rest[11]) + int(rest[12])) / CLK


def cpu_of_group(pgid):
    total = 0.0
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st and st[0] == pgid:
                total += st[1]
    return total


def service_pids():
    """The backing services started by bin/services (pid files under $DISTLAB_VAR/run)."""
    var = Path(os.environ.get("DISTLAB_VAR", ".var"))
    if not var.is_absolute():
        var = ROOT / var
    pids = {}
    for name in ("mariadb", "redis"):
        try:
            pids[name] = int((var / "run" / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            pass
    return pids


def machine_busy():
    """CPU seconds all cores spent busy since boot (/proc/stat), to see what else ran meanwhile."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK


class CpuMeter:
    """CPU seconds used by each process group of interest over one scenario."""

    def __init__(self, groups):
        self.groups = groups  # name -> ("group", pgid) | ("pid", pid) | ("self", None)

    def sample(self):
        out = {"machine_busy": machine_busy()}
        for name, (kind, ident) in self.groups.items():
            if kind == "self":
                out[name] = time.process_time()
            elif kind == "group":
                out[name] = cpu_of_group(ident)
            else:
                st = _proc_stat(ident)
                out[name] = st[1] if st else 0.0
        return out

    @staticmethod
    def delta(before, after):
        out = {k: round(after[k] - before[k], 2) for k in before}
        known = sum(v for k, v in out.items() if k != "machine_busy")
        out["other_processes"] = round(max(0.0, out["machine_busy"] - known), 2)
        return out


# ---------------------------------------------------------------------------------------------
# Baseline: raw Redis PUBLISH / SUBSCRIBE
# ---------------------------------------------------------------------------------------------


def load_event(seq, i, t0):
    """The same dict the recorder builds for a stream-load emit."""
    return {
        "v": 1,
        "run": 0,
        "seq": seq,
        "t": round((time.monotonic() - t0) * 1000.0, 2),
        "kind": "metric",
        "actor": "generator",
        "label": "load",
        "data": {"name": "load", "i": i, "wall": time.time()},
    }


def _publisher(url, channel, n, rate):
    """Runs in its own process (as the Celery worker does): one PUBLISH per event, no pipelining."""
    import redis

    r = redis.Redis.from_url(url)
    r.ping()
    t0 = time.monotonic()
    r.publish(
        channel,
        json.dumps(
            {
                "v": 1,
                "run": 0,
                "seq": 1,
                "t": 0.0,
                "kind": "node",
                "actor": "generator",
                "label": "generator up",
                "data": {"state": "up", "role": "client"},
            }
        ),
    )
    began = time.monotonic()
    for i in range(1, n + 1):
        if rate:
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        r.publish(channel, json.dumps(load_event(i + 1, i, t0)))
    r.close()


async def baseline(url, subscribers, n, rate, timeout):
    import redis.asyncio as aioredis

    receivers = [Receiver(n) for _ in range(subscribers)]
    clients, pubsubs = [], []
    for _ in range(subscribers):
        c = aioredis.Redis.from_url(url)
        ps = c.pubsub()
        await ps.subscribe(BASELINE_CHANNEL)
        msg = await ps.get_message(timeout=5)  # the subscribe confirmation
        assert msg and msg["type"] == "subscribe", msg
        clients.append(c)
        pubsubs.append(ps)

    async def listen(ps, rcv):
        try:
            async for msg in ps.listen():
                if msg["type"] != "message":
                    continue
                now = time.time()
                rcv.take([json.loads(msg["data"])], now)
                if rcv.done:
                    return
        except Exception as exc:  # noqa: BLE001 - reported per subscriber
            rcv.error = f"{type(exc).__name__}: {exc}"

    proc = multiprocessing.get_context("spawn").Process(
        target=_publisher, args=(url, BASELINE_CHANNEL, n, rate), daemon=True
    )
    tasks = [asyncio.create_task(listen(ps, r)) for ps, r in zip(pubsubs, receivers, strict=True)]
    proc.start()
    try:
        await asyncio.wait(tasks, timeout=timeout)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        for ps, c in zip(pubsubs, clients, strict=True):
            await ps.aclose()
            await c.aclose()
    return receivers


# ---------------------------------------------------------------------------------------------
# The platform: daphne + Celery worker subprocesses, runs through the HTTP API, websocket viewers
# ---------------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A subprocess in its own process group, logged to a file, stopped with its whole group."""

    def __init__(self, name, argv, env, logdir):
        self.name = name
        self.log_path = Path(logdir) / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace=10.0):
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.proc.poll()
                if not _group_alive(self.pgid):
                    break
                time.sleep(0.1)
            else:
                continue
            break
        try:
            self.proc.wait(1)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


def _group_alive(pgid):
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st and st[0] == pgid:
                # zombies of our own child count as gone once reaped; check state
                try:
                    with open(f"/proc/{name}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                if state != "Z":
                    return True
    return False


class Api:
    def __init__(self, base, token):
        self.base = base
        self.token = token
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")[:500]

    def create_run(self, scenario, params, speed=0):
        code, body = self.call(
            "POST", "/api/runs/", {"lab": "diagnostics", "scenario": scenario, "params": params, "speed": speed}
        )
        if code != 201:
            raise BenchError(f"POST /api/runs/ {scenario} {params}: {code} {body}")
        return body["id"]

    def run(self, run_id):
        code, body = self.call("GET", f"/api/runs/{run_id}/")
        if code != 200:
            raise BenchError(f"GET /api/runs/{run_id}/: {code} {body}")
        return body

    def stop(self, run_id):
        return self.call("POST", f"/api/runs/{run_id}/control/", {"action": "stop"})

    def wait_finished(self, run_id, timeout):
        deadline = time.monotonic() + timeout
        while True:
            body = self.run(run_id)
            if body["status"] in ("done", "failed", "cancelled"):
                return body
            if time.monotonic() > deadline:
                raise BenchError(f"run {run_id} still {body['status']} after {timeout:.0f} s")
            time.sleep(0.2)


def setup_django():
    os.environ["DJANGO_SETTINGS_MODULE"] = "labsite.settings.dev"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from apps.runs.models import Run

    call_command("migrate", verbosity=0, interactive=False)
    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER, defaults={"is_staff": True})
    user.is_staff = True
    user.set_unusable_password()
    user.save()
    # A previous benchmark that died mid-run may have left runs counted against the quota.
    Run.objects.filter(owner=user, status__in=Run.ACTIVE).update(
        status=Run.Status.CANCELLED, failure_reason="left over by an interrupted benchmark"
    )
    token, _ = Token.objects.get_or_create(user=user)
    client = Client()
    client.force_login(user)
    return token.key, client.cookies["sessionid"].value


WHATIFS = {
    "encode_once": "daphne: encode each batch's frame once per process, not once per viewer (bench/_probe_asgi.py)",
    "raw_insert": "worker: DatabaseSink.write as one executemany INSERT instead of bulk_create (bench/_probe_celery.py)",
    "batch_interval_ms": "worker: the recorder starts a batch at most every N ms (bench/_probe_celery.py)",
    "db_no_tls": "daphne + worker: DATABASE_URL ?ssl_disabled=true (PyMySQL builds no TLS context per connection)",
    "layer_socket_timeout": "daphne + worker: channel layer URL ?socket_timeout=15 (longer than BZPOPMIN's 5 s)",
}


def start_services(port, logdir, worker_name, profile=None, probe=None, probe_worker=None, whatif=()):
    from django.conf import settings

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="labsite.settings.dev", PYTHONUNBUFFERED="1")
    py = sys.executable
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    if whatif:
        env["BENCH_WHATIF"] = ",".join(whatif)
        probe = probe or Path(logdir) / "probe-daphne.json"
        probe_worker = probe_worker or Path(logdir) / "probe-worker.json"
        names = {w.partition("=")[0] for w in whatif}
        if "db_no_tls" in names:
            url = settings.DATABASES["default"]
            env["DATABASE_URL"] = (
                os.environ.get("DATABASE_URL", "")
                + ("&" if "?" in os.environ.get("DATABASE_URL", "") else "?")
                + "ssl_disabled=true"
            )
            assert url["ENGINE"].endswith("mysql"), url["ENGINE"]
        if "layer_socket_timeout" in names:
            host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
            env["CHANNEL_LAYER_URL"] = host + ("&" if "?" in host else "?") + "socket_timeout=15"
    app = "labsite.asgi:application"
    if probe:
        env["BENCH_PROBE_OUT"] = str(probe)
        app = "bench._probe_asgi:application"
    daphne = Service("daphne", [py, *prof, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app], env, logdir)
    celery_app = "labsite"
    if probe_worker:
        env["BENCH_PROBE_WORKER_OUT"] = str(probe_worker)
        celery_app = "bench._probe_celery"
    worker = Service(
        "celery",
        [
            py,
            "-m",
            "celery",
            "-A",
            celery_app,
            "worker",
            "--concurrency=1",
            "--pool=prefork",
            "-Q",
            "celery",
            "-n",
            worker_name,
            "--loglevel=WARNING",
        ],
        env,
        logdir,
    )
    return daphne, worker, probe, probe_worker


def wait_ready(api, daphne, worker, worker_name, timeout=60):
    from labsite.celery import app as celery_app

    deadline = time.monotonic() + timeout
    web_ok = worker_ok = False
    others = []
    while not (web_ok and worker_ok):
        for svc in (daphne, worker):
            if not svc.alive():
                raise BenchError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.tail()}")
        if not web_ok:
            try:
                code, _ = api.call("GET", "/api/labs/", timeout=2)
                web_ok = code == 200
                if code not in (200,):
                    raise BenchError(f"GET /api/labs/ answered {code}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        if not worker_ok:
            replies = celery_app.control.ping(timeout=1.0) or []
            names = [name for reply in replies for name in reply]
            worker_ok = worker_name in names
            others = [n for n in names if n != worker_name]
        if time.monotonic() > deadline:
            raise BenchError(f"daphne ready: {web_ok}, worker ready: {worker_ok} after {timeout} s")
        if not (web_ok and worker_ok):
            time.sleep(0.3)
    return others


async def viewer(url, origin, sessionid, rcv, ready, timeout):
    import websockets

    try:
        async with websockets.connect(
            url,
            origin=origin,
            additional_headers={"Cookie": f"sessionid={sessionid}"},
            max_size=None,
            proxy=None,
            ping_interval=None,
            open_timeout=20,
            max_queue=None,
        ) as ws:
            rcv.extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            async with asyncio.timeout(timeout):
                async for raw in ws:
                    now = time.time()
                    if raw.startswith(('{"type": "events"', '{"type":"events"')):
                        rcv.take_text(raw, now)
                        if rcv.done:
                            return
                        continue
                    frame = json.loads(raw)
                    kind = frame.get("type")
                    if kind == "events":
                        rcv.take(frame["events"], now)
                        if rcv.done:
                            return
                    elif kind == "status":
                        if rcv.first_status is None:
                            rcv.first_status = frame["status"]
                            ready.set()
                        rcv.final_status = frame["status"]
                        if frame["status"] in ("failed", "cancelled"):
                            rcv.error = f"run {frame['status']}: {frame.get('failure_reason')}"
                            return
                    elif kind == "error":
                        rcv.error = f"error frame: {frame}"
                        return
    except Exception as exc:  # noqa: BLE001 - reported per viewer
        rcv.error = rcv.error or f"{type(exc).__name__}: {exc}"
    finally:
        ready.set()


async def settle(url, ctx):
    """Waits until every viewer's consumer has finished connecting, backlog query included.

    A viewer gets its first status frame before its consumer reads the stored backlog; releasing
    the run then would let that read find events and page through them from the database. The
    consumers' database calls run one at a time, in order, in one thread (database_sync_to_async),
    so once one more connection has got its status frame, every earlier backlog query is done.
    """
    import websockets

    async with websockets.connect(
        url,
        origin=ctx["origin"],
        additional_headers={"Cookie": f"sessionid={ctx['sessionid']}"},
        proxy=None,
        ping_interval=None,
        open_timeout=30,
    ) as ws:
        async with asyncio.timeout(30):
            while json.loads(await ws.recv()).get("type") != "status":
                pass
    await asyncio.sleep(0.2)


async def platform_scenario(ctx, viewers, n, rate, timeout):
    api = ctx["api"]
    blocker = await asyncio.to_thread(api.create_run, "ping", {"rounds": 200}, 5)
    run_id = await asyncio.to_thread(api.create_run, "stream-load", {"events": n, "rate": rate})
    url = f"ws://127.0.0.1:{ctx['port']}/ws/runs/{run_id}/?after=0"
    receivers = [Receiver(n) for _ in range(viewers)]
    readies = [asyncio.Event() for _ in range(viewers)]
    tasks = []
    for r, ev in zip(receivers, readies, strict=True):
        tasks.append(asyncio.create_task(viewer(url, ctx["origin"], ctx["sessionid"], r, ev, timeout)))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 30)
    await settle(url, ctx)
    before = ctx["cpu"].sample()
    wall0 = time.monotonic()
    released_at = time.time()
    await asyncio.to_thread(api.stop, blocker)
    await asyncio.gather(*tasks)
    wall = time.monotonic() - wall0
    cpu = CpuMeter.delta(before, ctx["cpu"].sample())
    final = await asyncio.to_thread(api.wait_finished, run_id, 60)
    await asyncio.to_thread(api.wait_finished, blocker, 30)
    summary, per = group_summary(receivers)
    if viewers == 1:
        summary["stalls_over_50ms"] = receivers[0].stalls()
    summary.update(
        run=run_id,
        run_status=final["status"],
        run_verdict=final["verdict"],
        run_events=final["events"],
        viewers_connected_before_first_event=all(r.first_status in ("queued", None) for r in receivers),
        ws_extensions=receivers[0].extensions,
        wall_s=round(wall, 3),
        cpu_s=cpu,
        released_at=round(released_at, 4),
        first_event_at=min((r.first_recv for r in receivers if r.first_recv), default=None),
    )
    return summary, per


async def baseline_scenario(ctx, subscribers, n, rate, timeout):
    before = ctx["cpu"].sample()
    children = os.times()
    t0 = time.monotonic()
    receivers = await baseline(ctx["redis_url"], subscribers, n, rate, timeout)
    wall = time.monotonic() - t0
    after = os.times()
    summary, per = group_summary(receivers)
    cpu = CpuMeter.delta(before, ctx["cpu"].sample())
    # The publisher is a child process of this one, reaped by the time baseline() returns.
    cpu["publisher"] = round(
        after.children_user + after.children_system - children.children_user - children.children_system, 2
    )
    cpu["other_processes"] = round(max(0.0, cpu["other_processes"] - cpu["publisher"]), 2)
    summary.update(wall_s=round(wall, 3), cpu_s=cpu)
    return summary, per


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def build_report(args, res, meta):
    b1, b50, bp = res["baseline_1"], res["baseline_50"], res["baseline_paced"]
    v1, v50, vp = res["one_viewer"], res["fifty_viewers"], res["paced"]
    one_rate = v1["per_receiver_events_per_s"]["median"]
    base_rate = b1["per_receiver_events_per_s"]["median"]
    fifty_min = v50["per_receiver_events_per_s"]["min"]
    fifty_median = v50["per_receiver_events_per_s"]["median"]
    r_one = one_rate / base_rate if one_rate and base_rate else None
    r_fifty = fifty_min / one_rate if fifty_min and one_rate else None
    violations = {
        k: res[k]["violations"]
        for k in ("one_viewer", "fifty_viewers", "paced", "baseline_1", "baseline_50", "baseline_paced")
    }
    failures = []
    for key, count in violations.items():
        if count:
            failures.append(
                {
                    "scenario": key,
                    "violations": count,
                    "samples": res[key].get("violation_samples", []),
                    "errors": res[key].get("errors", []),
                }
            )
    for key in ("one_viewer", "fifty_viewers", "paced"):
        if res[key]["run_status"] != "done":
            failures.append({"scenario": key, "run_status": res[key]["run_status"]})
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "events": args.events,
        "viewers": args.viewers,
        "settings": meta,
        "method": {
            "events_per_s": "per viewer: load events received after the first arrival / seconds from the first "
            "to the last arrival",
            "latency": "receive time.time() - data.wall (time.time() at emit), every load event; a frame's "
            "events share its receive time",
            "baseline_publish": "one PUBLISH per event, no pipelining (one emit = one round-trip), JSON of the "
            "same event dict, from a separate process; redis.asyncio subscribers in the bench process",
            "viewers": "websockets clients with a session cookie, all connected (first status frame "
            "'queued') before the run's first event; the run waits behind a blocker run that is then stopped",
        },
        "baseline": {
            "channel": BASELINE_CHANNEL,
            "pipelining": False,
            "one_subscriber": _brief(b1),
            "fifty_subscribers": _brief(b50),
            "paced_1000_per_s": _brief(bp),
        },
        "one_viewer": {"events_per_s": one_rate, "p50_ms": v1["p50_ms"], "p99_ms": v1["p99_ms"]},
        "fifty_viewers": {
            "per_viewer_events_per_s": {
                "min": fifty_min,
                "median": fifty_median,
                "max": v50["per_receiver_events_per_s"]["max"],
            },
            "p50_ms": v50["p50_ms"],
            "p99_ms": v50["p99_ms"],
        },
        "paced_1000_per_s": {
            "events": args.paced_events,
            "p50_ms": vp["p50_ms"],
            "p99_ms": vp["p99_ms"],
            "events_per_s": vp["per_receiver_events_per_s"]["median"],
        },
        "ratios": {"one_viewer_vs_baseline": _round(r_one, 3), "fifty_vs_one_viewer": _round(r_fifty, 3)},
        "targets": {
            "one_viewer_vs_baseline": {
                "target": f">= {TARGETS['one_viewer_vs_baseline']}",
                "value": _round(r_one, 3),
                "met": bool(r_one and r_one >= TARGETS["one_viewer_vs_baseline"]),
            },
            "fifty_vs_one_viewer": {
                "target": f">= {TARGETS['fifty_vs_one_viewer']} (slowest viewer), every viewer complete",
                "value": _round(r_fifty, 3),
                "viewers_complete": f"{v50['complete']}/{v50['receivers']}",
                "met": bool(
                    r_fifty and r_fifty >= TARGETS["fifty_vs_one_viewer"] and v50["complete"] == v50["receivers"]
                ),
            },
            "paced_p99_ms": {
                "target": f"< {TARGETS['paced_p99_ms']:.0f}",
                "value": vp["p99_ms"],
                "met": bool(vp["p99_ms"] is not None and vp["p99_ms"] < TARGETS["paced_p99_ms"]),
            },
            "exactly_once_in_order": {
                "target": "0 violations",
                "value": sum(violations.values()),
                "met": not any(violations.values()),
            },
        },
        "failures": failures,
        "details": res,
    }
    return report


def _brief(s):
    return {
        "subscribers": s["receivers"],
        "events_per_s": s["per_receiver_events_per_s"]["median"],
        "per_subscriber_events_per_s": s["per_receiver_events_per_s"],
        "p50_ms": s["p50_ms"],
        "p99_ms": s["p99_ms"],
    }


def _fmt(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def table(report):
    d = report["details"]
    rows = [
        ("Raw Redis PUB/SUB, 1 subscriber", d["baseline_1"]),
        (f"Raw Redis PUB/SUB, {d['baseline_50']['receivers']} subscribers", d["baseline_50"]),
        ("Raw Redis PUB/SUB, 1 subscriber, paced 1,000/s", d["baseline_paced"]),
        ("DistLab, 1 viewer", d["one_viewer"]),
        (f"DistLab, {d['fifty_viewers']['receivers']} viewers", d["fifty_viewers"]),
        ("DistLab, 1 viewer, paced 1,000/s", d["paced"]),
    ]
    lines = [
        f"{report['events']:,} events per unpaced scenario, {report['paced_1000_per_s']['events']:,} paced; "
        f"{report['machine']['cores']} cores; {report['when']}",
        "",
        "| scenario | events/s per receiver (min / median) | p50 ms | p99 ms | events/frame | exactly-once |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, s in rows:
        r = s["per_receiver_events_per_s"]
        rate = _fmt(r["median"]) if s["receivers"] == 1 else f"{_fmt(r['min'])} / {_fmt(r['median'])}"
        ok = "yes" if not s["violations"] else f"NO ({s['violations']})"
        lines.append(
            f"| {name} | {rate} | {_fmt(s['p50_ms'], 1)} | {_fmt(s['p99_ms'], 1)} | "
            f"{_fmt(s['events_per_frame_median'], 0)} | {ok} |"
        )
    lines += ["", "| target | value | met |", "|---|---:|---|"]
    names = {
        "one_viewer_vs_baseline": "1 viewer ≥ 0.5 × raw Redis (events/s)",
        "fifty_vs_one_viewer": "each of 50 viewers ≥ 0.5 × 1 viewer",
        "paced_p99_ms": "p99 < 100 ms at 1,000 events/s",
        "exactly_once_in_order": "exactly once, in order (violations)",
    }
    for key, label in names.items():
        t = report["targets"][key]
        v = t["value"]
        shown = (
            _fmt(v, 1) + " ms"
            if key == "paced_p99_ms" and v is not None
            else (f"{v:.2f}×" if isinstance(v, float) else str(v))
        )
        lines.append(f"| {label} | {shown} | {'yes' if t['met'] else '**no**'} |")
    for failure in report["failures"]:
        errors = sorted(set(failure.get("errors", [])))
        what = (
            f"{failure['violations']} violation(s)" if "violations" in failure else f"run {failure.get('run_status')}"
        )
        lines.append("")
        lines.append(
            f"Failure in `{failure['scenario']}`: {what}" + (f"; errors: {'; '.join(errors)}" if errors else "")
        )
    return "\n".join(lines)


def print_profile(path, top=35):
    import pstats

    try:
        stats = pstats.Stats(str(path))
    except OSError as exc:
        print(f"no profile at {path}: {exc}", file=sys.stderr)
        return
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def update_readme(text):
    block = f"{TABLE_BEGIN}\n{text}\n{TABLE_END}"
    try:
        current = README.read_text()
    except OSError:
        current = ""
    if TABLE_BEGIN in current and TABLE_END in current:
        head, rest = current.split(TABLE_BEGIN, 1)
        tail = rest.split(TABLE_END, 1)[1]
        README.write_text(head + block + tail)
    else:
        README.write_text((current.rstrip() + "\n\n" if current else "") + "## Stream (latest run)\n\n" + block + "\n")


# ---------------------------------------------------------------------------------------------


# The paced run goes before the 50-viewer one, so nothing the fan-out left behind can touch its tail.
SCENARIOS = ("baseline_1", "baseline_50", "baseline_paced", "one_viewer", "paced", "fifty_viewers")


async def quiesce(ctx, limit=15.0, window=0.5, idle_cores=0.05):
    """Waits until daphne and the worker are idle (less than 5% of a core over half a second), so a
    scenario does not inherit the previous one's leftovers. Returns the seconds it waited."""
    started = time.monotonic()
    cpu = ctx["cpu"]
    while time.monotonic() - started < limit:
        before = cpu.sample()
        await asyncio.sleep(window)
        used = CpuMeter.delta(before, cpu.sample())
        if used.get("daphne", 0) + used.get("celery", 0) < idle_cores * window:
            break
    return round(time.monotonic() - started, 2)


async def measure(ctx, args, log):
    res = {}
    n, big, paced = args.events, args.viewers, args.paced_events
    plan = {
        "baseline_1": (f"baseline: raw Redis PUBLISH/SUBSCRIBE, 1 subscriber, {n} events", baseline_scenario, 1, n, 0),
        "baseline_50": (f"baseline: {big} subscribers, {n} events", baseline_scenario, big, n, 0),
        "baseline_paced": (
            f"baseline: 1 subscriber, {paced} events paced at 1000/s",
            baseline_scenario,
            1,
            paced,
            1000,
        ),
        "one_viewer": (f"platform: 1 viewer, {n} events", platform_scenario, 1, n, 0),
        "fifty_viewers": (f"platform: {big} viewers, {n} events", platform_scenario, big, n, 0),
        "paced": (f"platform: 1 viewer, {paced} events paced at 1000/s", platform_scenario, 1, paced, 1000),
    }
    for key in args.only or SCENARIOS:
        title, fn, receivers, events, rate = plan[key]
        quiet = await quiesce(ctx)
        log(title)
        res[key], per = await fn(ctx, receivers, events, rate, args.timeout)
        res[key]["waited_for_quiet_s"] = quiet
        if receivers > 1:
            res[key]["per_receiver_events_per_s_all"] = sorted(p["events_per_s"] or 0 for p in per)
        log(f"  -> {_oneline(res[key])}")
    return res


def _oneline(s):
    r = s["per_receiver_events_per_s"]
    return (
        f"events/s min {_fmt(r['min'])} median {_fmt(r['median'])}, p50 {_fmt(s['p50_ms'], 1)} ms, "
        f"p99 {_fmt(s['p99_ms'], 1)} ms, violations {s['violations']}, cpu {s.get('cpu_s')}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events per unpaced scenario (default 20000)")
    parser.add_argument("--viewers", type=int, default=50, help="viewers in the fan-out scenario (default 50)")
    parser.add_argument("--paced-events", type=int, default=5000, help="events at 1000/s (default 5000)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds a scenario may take")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-readme", action="store_true", help="do not refresh the table in bench/README.md")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SCENARIOS,
        help="diagnosis: run only these scenarios and print their details (no results file, no README)",
    )
    parser.add_argument(
        "--profile-daphne",
        type=Path,
        metavar="FILE",
        help="diagnosis: run daphne under cProfile, write its stats to FILE and print the top functions",
    )
    parser.add_argument(
        "--probe-daphne",
        type=Path,
        metavar="FILE",
        help="diagnosis: serve bench/_probe_asgi.py "
        "(timers around the consumer's hot paths), write its counters to FILE and print them",
    )
    parser.add_argument(
        "--probe-worker",
        type=Path,
        metavar="FILE",
        help="diagnosis: run the worker with "
        "bench/_probe_celery.py (timers around the recorder's sinks), write its counters to FILE",
    )
    parser.add_argument(
        "--whatif",
        nargs="+",
        metavar="CHANGE",
        default=[],
        help="diagnosis: try proposed "
        "platform changes without editing the platform (see WHATIFS); results go to "
        "bench/results/stream-whatif.json unless --output says otherwise, never to the README",
    )
    args = parser.parse_args()
    for w in args.whatif:
        if w.partition("=")[0] not in WHATIFS:
            parser.error(f"unknown --whatif {w!r}; one of: {', '.join(WHATIFS)}")
    if args.whatif:
        args.no_readme = True
        if args.output == RESULTS:
            args.output = RESULTS.with_name("stream-whatif.json")

    def log(msg):
        print(f"[stream {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # A SIGTERM ends the script through its finally blocks, so daphne and the worker are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    token, sessionid = setup_django()
    from django.conf import settings

    port = free_port()
    logdir = tempfile.mkdtemp(prefix="distlab-bench-")
    worker_name = f"bench-stream-{os.getpid()}@{socket.gethostname()}"
    api = Api(f"http://127.0.0.1:{port}", token)
    daphne = worker = probe_daphne = probe_worker = None
    try:
        daphne, worker, probe_daphne, probe_worker = start_services(
            port, logdir, worker_name, args.profile_daphne, args.probe_daphne, args.probe_worker, args.whatif
        )
        others = wait_ready(api, daphne, worker, worker_name)
        if others:
            log(f"warning: other Celery workers share this broker and may take the runs: {others}")
        log(f"daphne on :{port} and worker {worker_name} ready ({time.monotonic() - started:.1f} s); logs in {logdir}")
        groups = {"bench_client": ("self", None), "daphne": ("group", daphne.pgid), "celery": ("group", worker.pgid)}
        groups.update({name: ("pid", pid) for name, pid in service_pids().items()})
        ctx = {
            "api": api,
            "port": port,
            "origin": f"http://127.0.0.1:{port}",
            "sessionid": sessionid,
            "redis_url": settings.REDIS_URL,
            "cpu": CpuMeter(groups),
        }
        res = asyncio.run(measure(ctx, args, log))
    except BenchError as exc:
        log(f"error: {exc}")
        for svc in (daphne, worker):
            if svc is not None:
                log(f"--- {svc.name} log tail ---\n{svc.tail()}")
        return 1
    finally:
        # Once stopping, a second SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for svc in (worker, daphne):
            if svc is not None:
                try:
                    svc.stop()
                except BaseException:  # noqa: BLE001 - stop the other one whatever happened
                    if _group_alive(svc.pgid):
                        os.killpg(svc.pgid, signal.SIGKILL)
    if args.profile_daphne:
        print_profile(args.profile_daphne)
    probes = {}
    for name, probe in (("daphne", probe_daphne), ("worker", probe_worker)):
        if not probe:
            continue
        try:
            probes[name] = json.loads(probe.read_text())
        except (OSError, ValueError) as exc:
            print(f"no probe output from {name}: {exc}", file=sys.stderr)
            continue
        probes[name].pop("timeline", None)
        if not args.whatif:
            print(json.dumps(probes[name], indent=2))
    if args.only:
        print(json.dumps(res, indent=2))
        return 0

    meta = {
        "debug": settings.DEBUG,
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
        "channel_capacity": settings.CHANNEL_LAYERS["default"]["CONFIG"].get("capacity"),
        "worker": "celery prefork --concurrency=1",
        "asgi": "daphne, 1 process",
        "other_workers_on_broker": others,
        "runtime_s": round(time.monotonic() - started, 1),
    }
    if args.whatif:
        meta["whatif"] = {w: WHATIFS[w.partition("=")[0]] for w in args.whatif}
        meta["probes"] = probes
    report = build_report(args, res, meta)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.output)
    text = table(report)
    print(text)
    if not args.no_readme:
        update_readme(text)
    log(f"results in {args.output} ({meta['runtime_s']} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
