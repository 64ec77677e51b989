#!/usr/bin/env python
"""Stream benchmark: how fast, and how soon, a run's events reach its websocket viewers.

    .venv/bin/python bench/stream.py [--events 20000] [--viewers 50] [--paced-events 5000] [--only SCENARIO ...]

`make bench` starts the services on the test ports and runs this; by hand it needs the services and
the environment bin/dev sets (DATABASE_URL, REDIS_URL, LAB_*). bench/README.md says what is measured
and how. Writes bench/results/stream.json, prints a markdown table and puts it in bench/README.md
(with --only it prints the details and writes nothing). Exits 0 whatever the numbers, non-zero
only when the benchmark itself could not run.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from array import array
from pathlib import Path

import common
from common import ROOT, SETTINGS, ratio

CHANNEL = "bench:baseline"
# The paced run goes before the fan-out, so nothing the fan-out leaves behind can touch its tail.
SCENARIOS = ("baseline_1", "baseline_50", "baseline_paced", "one_viewer", "paced", "fifty_viewers")


class BenchError(RuntimeError):
    """The benchmark itself could not run (as opposed to numbers that miss a target)."""


# One receiver: a websocket viewer or a Redis subscriber ----------------------------------------

# The recorder's layout (v, run, seq first; a load event's data is name, i, wall), spaced or not.
EVENT_SEQ = re.compile(r'\{"v": ?1, ?"run": ?-?\d+, ?"seq": ?(\d+),')
LOAD_WALL = re.compile(r'"data": ?\{"name": ?"load", ?"i": ?\d+, ?"wall": ?([-+0-9.eE]+)\}')


def load_walls(events):
    return [e["data"]["wall"] for e in events if isinstance(e.get("data"), dict) and e["data"].get("name") == "load"]


class Receiver:
    """Counts the load events one receiver gets, their latency (receive time.time() minus the
    event's data.wall, stamped at emit), and every break of exactly-once, in-order delivery: seq
    must run 1, 2, 3 ... with no gap or repeat, and every load event must arrive."""

    def __init__(self, expected):
        self.expected, self.last_seq = expected, 0
        self.got = self.frames = self.first_frame_loads = self.violations = 0
        self.first_recv = self.last_recv = self.first_status = self.error = None
        self.latency = array("d")  # seconds, one per load event
        self.samples = []  # the first few violations, spelled out

    @property
    def done(self):
        return self.got >= self.expected

    def violation(self, what):
        self.violations += 1
        if len(self.samples) < 10:
            self.samples.append(what)

    def take_frame(self, text, now):
        """An `events` frame, read with two regular expressions: 50 viewers in one client process
        would otherwise spend about as much CPU in json.loads as the server spends producing the
        frames, on the same cores. Every 32nd frame is also decoded in full and compared, so a
        change of format shows up as violations rather than as wrong numbers."""
        seqs = [int(s) for s in EVENT_SEQ.findall(text)]
        walls = [float(w) for w in LOAD_WALL.findall(text)]
        if self.frames % 32 == 0:
            events = json.loads(text)["events"]
            if [e["seq"] for e in events] != seqs or load_walls(events) != walls:
                self.violation("the frame parser disagrees with json.loads")
        self.take(seqs, walls, now)

    def take(self, seqs, walls, now):
        if seqs == list(range(self.last_seq + 1, self.last_seq + 1 + len(seqs))):
            self.last_seq += len(seqs)
        else:
            for seq in seqs:
                if seq != self.last_seq + 1:
                    self.violation(f"seq {seq} after {self.last_seq}")
                self.last_seq = max(self.last_seq, seq)
        if walls:
            self.latency.extend([now - w for w in walls])
            self.frames += 1
            self.got += len(walls)
            if self.first_recv is None:
                self.first_recv, self.first_frame_loads = now, len(walls)
            self.last_recv = now

    def rate(self):
        """Events per second from the first arrival to the last (the events after the first frame)."""
        span = self.last_recv - self.first_recv if self.got else 0.0
        return round((self.got - self.first_frame_loads) / span, 1) if span > 0 else None


def group_summary(receivers):
    """Rates of the receivers that got every event (one that did not is a violation), and latency
    percentiles over every load event of every receiver."""
    for r in receivers:
        if not r.done:
            r.violation(f"received {r.got} of {r.expected} load events")
    rates = sorted(r.rate() for r in receivers if r.done and r.rate())
    lat = [x * 1000.0 for r in receivers for x in r.latency]
    pct = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [None] * 99
    return {
        "receivers": len(receivers),
        "complete": sum(r.done for r in receivers),
        "violations": sum(r.violations for r in receivers),
        "events_per_s": {
            "min": rates[0] if rates else None,
            "median": round(statistics.median(rates), 1) if rates else None,
            "max": rates[-1] if rates else None,
            "all": rates,
        },
        "p50_ms": pct[49] and round(pct[49], 2),
        "p99_ms": pct[98] and round(pct[98], 2),
        "max_ms": round(max(lat), 2) if lat else None,
        "events_per_frame": round(statistics.median(r.got / r.frames if r.frames else 0 for r in receivers), 1),
        "violation_samples": [s for r in receivers for s in r.samples][:10],
        "errors": sorted({r.error for r in receivers if r.error})[:5],
        "first_statuses": sorted({str(r.first_status) for r in receivers}),
    }


# CPU seconds per process, from /proc -----------------------------------------------------------

CLK = os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used over a scenario by daphne and the worker (their whole process groups),
    MariaDB, Redis and this client, and by every other process alive at the end (`other_processes`:
    another job on the machine shows up there)."""

    def __init__(self, groups, pids):
        self.groups, self.pids = groups, pids  # name -> process group id; name -> pid

    @staticmethod
    def sample():
        """pid -> (process group, CPU seconds) for every process."""
        procs = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ... utime, stime
            except OSError:
                continue  # a process that just ended
            procs[int(pid)] = int(fields[2]), (int(fields[11]) + int(fields[12])) / CLK
        return procs

    def since(self, before, **extra):
        after = self.sample()
        used = {pid: cpu - before.get(pid, (0, 0.0))[1] for pid, (_, cpu) in after.items()}
        out = {name: sum(used[p] for p, (g, _) in after.items() if g == pgid) for name, pgid in self.groups.items()}
        out |= {name: used.get(pid, 0.0) for name, pid in self.pids.items()}
        out["other_processes"] = sum(used.values()) - sum(out.values())
        return {k: round(v, 2) for k, v in (out | extra).items()}


def service_pids():
    """MariaDB and Redis as bin/services started them (pid files in $DISTLAB_VAR/run)."""
    run = ROOT / os.environ.get("DISTLAB_VAR", ".var") / "run"  # an absolute DISTLAB_VAR replaces ROOT
    files = {name: run / f"{name}.pid" for name in ("mariadb", "redis")}  # the control Redis
    return {name: int(path.read_text()) for name, path in files.items() if path.exists()}


# Baseline: raw Redis PUBLISH / SUBSCRIBE -------------------------------------------------------


def publisher(url, n, rate):
    """In its own process, as the worker is: the same event dicts, JSON-encoded, one PUBLISH per
    event (no pipelining, as one emit is one event)."""
    import redis

    r, t0 = redis.Redis.from_url(url), time.monotonic()
    for i in range(1, n + 1):
        if rate and (delay := t0 + i / rate - time.monotonic()) > 0:
            time.sleep(delay)
        event = {"v": 1, "run": 0, "seq": i, "t": round((time.monotonic() - t0) * 1000.0, 2), "kind": "metric"}
        event |= {"actor": "generator", "label": "load", "data": {"name": "load", "i": i, "wall": time.time()}}
        r.publish(CHANNEL, json.dumps(event))
    r.close()


async def baseline_scenario(ctx, subscribers, n, rate, timeout):
    import redis.asyncio as aioredis

    receivers = [Receiver(n) for _ in range(subscribers)]
    clients = [aioredis.Redis.from_url(ctx["redis_url"]) for _ in range(subscribers)]
    pubsubs = [c.pubsub() for c in clients]
    for ps in pubsubs:
        await ps.subscribe(CHANNEL)
        await ps.get_message(timeout=5)  # the subscribe confirmation

    async def listen(ps, rcv):
        try:
            async for msg in ps.listen():
                if msg["type"] == "message":
                    event = json.loads(msg["data"])
                    rcv.take([event["seq"]], load_walls([event]), time.time())
                    if rcv.done:
                        return
        except Exception as exc:  # noqa: BLE001 - reported per subscriber
            rcv.error = f"{type(exc).__name__}: {exc}"

    before, children, wall = ctx["cpu"].sample(), os.times(), time.monotonic()
    tasks = [asyncio.create_task(listen(ps, r)) for ps, r in zip(pubsubs, receivers, strict=True)]
    proc = multiprocessing.get_context("spawn").Process(target=publisher, args=(ctx["redis_url"], n, rate))
    proc.start()
    await asyncio.wait(tasks, timeout=timeout)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(proc.join)  # it publishes whether anyone listens or not
    wall, after = time.monotonic() - wall, os.times()
    for ps, client in zip(pubsubs, clients, strict=True):
        await ps.aclose()
        await client.aclose()
    published = after.children_user + after.children_system - children.children_user - children.children_system
    cpu = ctx["cpu"].since(before, publisher=published)
    return group_summary(receivers) | {"wall_s": round(wall, 3), "cpu_s": cpu}


# The platform: daphne and a Celery worker, runs through the HTTP API, websocket viewers --------


class Service:
    """A subprocess in its own process group, logged to a file; stop() ends the whole group."""

    def __init__(self, name, argv, logdir):
        self.name, self.log_path = name, Path(logdir) / f"{name}.log"
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )

    def tail(self, lines=30):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace=15.0):
        """SIGTERM to the group (the worker's pool child included); SIGKILL if it takes too long."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None, timeout=10):
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        req = urllib.request.Request(self.base + path, body and json.dumps(body).encode(), headers, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")[:500]

    def create_run(self, scenario, params, speed=0):
        body = {"lab": "diagnostics", "scenario": scenario, "params": params, "speed": speed}
        code, answer = self.call("POST", "/api/runs/", body)
        if code != 201:
            raise BenchError(f"POST /api/runs/ {body}: {code} {answer}")
        return answer["id"]

    def wait_finished(self, run_id, timeout):
        deadline = time.monotonic() + timeout
        while True:
            code, run = self.call("GET", f"/api/runs/{run_id}/")
            if code == 200 and run["status"] in ("done", "failed", "cancelled"):
                return run
            if time.monotonic() > deadline:
                raise BenchError(f"run {run_id} not finished after {timeout:.0f} s: {code} {run}")
            time.sleep(0.2)


def setup_django():
    """Migrates; returns an API token and a session cookie for the `bench` user (staff)."""
    common.setup_django(SETTINGS, migrate=True)
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from apps.runs.models import Run

    user, _ = get_user_model().objects.update_or_create(username="bench", defaults={"is_staff": True})
    # An interrupted benchmark may have left runs that count against the quota.
    Run.objects.filter(owner=user, status__in=Run.ACTIVE).update(
        status=Run.Status.CANCELLED, failure_reason="left over by an interrupted benchmark"
    )
    client = Client()
    client.force_login(user)
    return Token.objects.get_or_create(user=user)[0].key, client.cookies["sessionid"].value


def start_platform(name, token, services, log):
    """Starts daphne on a free port and one Celery worker (prefork, 1 process) on the default
    queue, appending both to `services` (the caller stops them, however it ends), and waits until
    they answer. Returns (api, port, logdir, the other workers on the broker)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logdir = tempfile.mkdtemp(prefix="distlab-bench-")
    worker_name = f"bench-{name}-{os.getpid()}@{socket.gethostname()}"
    api, py = Api(f"http://127.0.0.1:{port}", token), sys.executable
    daphne = [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "labsite.asgi:application"]
    services.append(Service("daphne", daphne, logdir))
    worker = [py, "-m", "celery", "-A", "labsite", "worker", "-P", "prefork", "-c", "1", "-Q", "celery"]
    services.append(Service("celery", [*worker, "-n", worker_name, "--loglevel=WARNING"], logdir))
    others = wait_ready(api, services, worker_name)
    if others:
        log(f"warning: other Celery workers share this broker and may take the runs: {others}")
    log(f"daphne on :{port} and worker {worker_name} ready; logs in {logdir}")
    return api, port, logdir, others


def wait_ready(api, services, worker_name, timeout=60):
    """Waits for daphne to answer and the worker to reply to a ping; returns the names of any
    other workers on the broker (they could take the benchmark's runs)."""
    from labsite.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for svc in services:
            if svc.proc.poll() is not None:
                raise BenchError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.tail()}")
        with contextlib.suppress(OSError):  # daphne not listening yet
            if api.call("GET", "/api/labs/", timeout=2)[0] == 200:
                workers = [name for reply in app.control.ping(timeout=1.0) or [] for name in reply]
                if worker_name in workers:
                    return [w for w in workers if w != worker_name]
        time.sleep(0.3)
    raise BenchError(f"daphne or worker {worker_name} not ready after {timeout} s")


def connect(ctx, url, **kwargs):
    import websockets

    cookie = {"Cookie": f"sessionid={ctx['sessionid']}"}
    return websockets.connect(
        url, origin=ctx["origin"], additional_headers=cookie, proxy=None, ping_interval=None, **kwargs
    )


async def viewer(ctx, url, rcv, ready, timeout):
    try:
        async with connect(ctx, url, max_size=None, max_queue=None, open_timeout=20) as ws, asyncio.timeout(timeout):
            async for raw in ws:
                now = time.time()
                if raw.startswith(('{"type":"events"', '{"type": "events"')):
                    rcv.take_frame(raw, now)
                    if rcv.done:
                        return
                    continue
                frame = json.loads(raw)
                if frame["type"] == "status":
                    rcv.first_status = rcv.first_status or frame["status"]
                    ready.set()
                if frame["type"] == "error" or frame.get("status") in ("failed", "cancelled"):
                    rcv.error = f"{frame['type']} frame: {frame}"
                    return
    except Exception as exc:  # noqa: BLE001 - reported per viewer
        rcv.error = rcv.error or f"{type(exc).__name__}: {exc}"
    finally:
        ready.set()


async def settle(ctx, url):
    """Waits until every viewer's consumer is done connecting, backlog query included. A viewer
    gets its status frame before its consumer reads the stored backlog, and the consumers' database
    calls run one at a time, in order, in one thread: once one more connection has its status
    frame, every earlier backlog query is over."""
    async with connect(ctx, url, open_timeout=30) as ws, asyncio.timeout(30):
        while json.loads(await ws.recv())["type"] != "status":
            pass
    await asyncio.sleep(0.2)


async def platform_scenario(ctx, viewers, n, rate, timeout):
    """Every viewer is connected before the run's first event: the run waits in the queue behind a
    blocker run (diagnostics/ping at 5 steps/s) that is stopped once they all are."""
    api = ctx["api"]
    blocker = await asyncio.to_thread(api.create_run, "ping", {"rounds": 200}, 5)
    run_id = await asyncio.to_thread(api.create_run, "stream-load", {"events": n, "rate": rate})
    url = f"ws://127.0.0.1:{ctx['port']}/ws/runs/{run_id}/?after=0"
    receivers, readies = [Receiver(n) for _ in range(viewers)], [asyncio.Event() for _ in range(viewers)]
    tasks = [asyncio.create_task(viewer(ctx, url, r, e, timeout)) for r, e in zip(receivers, readies, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 30)
    await settle(ctx, url)
    before, wall = ctx["cpu"].sample(), time.monotonic()
    await asyncio.to_thread(api.call, "POST", f"/api/runs/{blocker}/control/", {"action": "stop"})
    await asyncio.gather(*tasks)
    wall, cpu = time.monotonic() - wall, ctx["cpu"].since(before)
    run = await asyncio.to_thread(api.wait_finished, run_id, 60)
    await asyncio.to_thread(api.wait_finished, blocker, 30)
    extra = {"run": run_id, "run_status": run["status"], "run_events": run["events"], "wall_s": round(wall, 3)}
    return group_summary(receivers) | extra | {"cpu_s": cpu}


async def quiesce(ctx, limit=15.0, window=0.5):
    """Waits (at most `limit` s) until daphne and the worker use under 5% of a core, so a scenario
    does not inherit the previous one's leftovers."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = ctx["cpu"].sample()
        await asyncio.sleep(window)
        used = ctx["cpu"].since(before)
        if used["daphne"] + used["celery"] < 0.05 * window:
            break
    return round(time.monotonic() - started, 2)


async def measure(ctx, args, log):
    n, p, v = args.events, args.paced_events, args.viewers
    plan = {  # title, how, receivers, events, events/s (0: as fast as they come)
        "baseline_1": ("Raw Redis PUB/SUB, 1 subscriber", baseline_scenario, 1, n, 0),
        "baseline_50": (f"Raw Redis PUB/SUB, {v} subscribers", baseline_scenario, v, n, 0),
        "baseline_paced": ("Raw Redis PUB/SUB, 1 subscriber, paced 1,000/s", baseline_scenario, 1, p, 1000),
        "one_viewer": ("DistLab, 1 viewer", platform_scenario, 1, n, 0),
        "paced": ("DistLab, 1 viewer, paced 1,000/s", platform_scenario, 1, p, 1000),
        "fifty_viewers": (f"DistLab, {v} viewers", platform_scenario, v, n, 0),
    }
    res = {}
    for key in args.only or SCENARIOS:
        title, how, receivers, events, rate = plan[key]
        quiet = await quiesce(ctx)
        log(f"{title}: {events:,} events")
        s = res[key] = {"title": title} | await how(ctx, receivers, events, rate, timeout=60 + events / 500)
        s["waited_for_quiet_s"] = quiet
        rates = {k: x for k, x in s["events_per_s"].items() if k != "all"}
        log(f"  events/s {rates}, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, violations {s['violations']}")
        log(f"  cpu-s {s['cpu_s']}")
    return res


# Report ----------------------------------------------------------------------------------------


def fmt(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"


def build_report(args, res, meta):
    one, fifty, paced = res["one_viewer"], res["fifty_viewers"], res["paced"]
    one_vs_base = ratio(one["events_per_s"]["median"], res["baseline_1"]["events_per_s"]["median"])
    fifty_vs_one = ratio(fifty["events_per_s"]["min"], one["events_per_s"]["median"])
    violations = sum(s["violations"] for s in res.values())
    all_in = fifty["complete"] == fifty["receivers"]
    complete = f"{fifty['complete']}/{fifty['receivers']} complete"
    targets = [  # what, value as shown, met
        ("1 viewer ≥ 0.5 × raw Redis, 1 subscriber (events/s)", f"{fmt(one_vs_base, 2)}×", (one_vs_base or 0) >= 0.5),
        (
            f"slowest of {args.viewers} viewers ≥ 0.5 × 1 viewer, all complete",
            f"{fmt(fifty_vs_one, 2)}×, {complete}",
            (fifty_vs_one or 0) >= 0.5 and all_in,
        ),
        ("p99 < 100 ms at 1,000 events/s", f"{fmt(paced['p99_ms'], 1)} ms", (paced["p99_ms"] or 1e9) < 100),
        ("exactly once, in order (violations)", str(violations), violations == 0),
    ]
    failures = [
        f"`{k}`: {'; '.join(s['violation_samples'][:3] + s['errors'])}" for k, s in res.items() if s["violations"]
    ]
    failures += [f"`{k}`: run {s['run_status']}" for k, s in res.items() if s.get("run_status", "done") != "done"]
    return {
        "when": common.stamp(),
        "machine": common.machine(),
        "events": args.events,
        "paced_events": args.paced_events,
        "viewers": args.viewers,
        "settings": meta,
        "ratios": {"one_viewer_vs_baseline": one_vs_base, "fifty_vs_one_viewer": fifty_vs_one},
        "targets": [dict(zip(("target", "value", "met"), t, strict=True)) for t in targets],
        "failures": failures,
        "scenarios": res,
    }


def table(report):
    lines = [
        f"{report['events']:,} events per unpaced scenario, {report['paced_events']:,} paced; "
        f"{report['machine']['cores']} cores; {report['when']}",
        "",
        "| scenario | events/s per receiver (min / median) | p50 ms | p99 ms | events/frame | exactly-once |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for s in report["scenarios"].values():
        r = s["events_per_s"]
        rate = fmt(r["median"]) if s["receivers"] == 1 else f"{fmt(r['min'])} / {fmt(r['median'])}"
        ok = f"NO ({s['violations']})" if s["violations"] else "yes"
        lines.append(
            f"| {s['title']} | {rate} | {fmt(s['p50_ms'], 1)} | {fmt(s['p99_ms'], 1)} | {fmt(s['events_per_frame'])} | {ok} |"
        )
    lines += ["", "| target | value | met |", "|---|---:|---|"]
    lines += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in report["targets"]]
    lines += [f"\nFailure in {f}" for f in report["failures"]]
    return "\n".join(lines)


# Main ------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events per unpaced scenario (default 20000)")
    parser.add_argument("--viewers", type=int, default=50, help="viewers and subscribers in the fan-out (default 50)")
    parser.add_argument("--paced-events", type=int, default=5000, help="events at 1,000/s (default 5000)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run these only; print details, write nothing")
    args = parser.parse_args()
    log = common.logger("stream")
    common.exit_on_sigterm()  # daphne and the worker stop too
    started = time.monotonic()
    token, sessionid = setup_django()
    from django.conf import settings

    services = []
    try:
        api, port, logdir, others = start_platform("stream", token, services, log)
        cpu = CpuMeter({svc.name: svc.proc.pid for svc in services}, service_pids() | {"bench_client": os.getpid()})
        ctx = {"api": api, "port": port, "origin": f"http://127.0.0.1:{port}", "sessionid": sessionid, "cpu": cpu}
        ctx["redis_url"] = settings.REDIS_URL
        res = asyncio.run(measure(ctx, args, log))
    except BenchError as exc:
        log(f"error: {exc}")
        for svc in services:
            log(f"--- {svc.name} log tail ---\n{svc.tail()}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        for svc in services:
            svc.stop()
    if args.only:
        print(json.dumps(res, indent=2))
        return 0
    meta = {"debug": settings.DEBUG, "worker": "celery prefork, 1 process", "asgi": "daphne, 1 process"}
    meta |= {"other_workers_on_broker": others, "runtime_s": round(time.monotonic() - started, 1)}
    path = common.publish("stream", build_report(args, res, meta), table)
    log(f"results in {path.relative_to(ROOT)} ({meta['runtime_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
