"""The MapReduce coordinator (the paper's master): splits the input, hands map tasks and then
reduce tasks to idle workers, watches heartbeats and timeouts, re-runs what failed, launches backup
tasks near the end of a phase, and commits exactly one attempt of every task.

Plain Python: workers are reached through a dispatcher (apps/mapreduce/tasks.py sends Celery
tasks), and all data goes through the run's keys on the lab Redis (ctx.nodes.redis()).
"""

import json
import statistics
import time
from collections import deque

from . import corpus
from .jobs import make_job
from .worker import TTL_S, Keys, encode_split

MAX_ATTEMPTS = 4
START_TIMEOUT_S = 15.0  # a task sent to a worker that never picks it up is given to another
HEARTBEAT_MS = 1000
START_COMMAND = "celery -A labsite worker -Q mapreduce -c 1 -n mr1@%h"


class NoWorkersError(RuntimeError):
    pass


def human_bytes(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n} B"


class WorkerState:
    def __init__(self, name, host):
        self.name, self.host = name, host
        self.current = None  # the attempt it is running (a timed-out one too, until it reports)
        self.state = "up"
        self.kill_next = False  # an instructor killed it while idle: its next attempt dies


class Attempt:
    LIVE = ("sent", "running", "timed_out")

    def __init__(self, task, n, worker, backup, fault):
        self.task, self.n, self.worker, self.backup, self.fault = task, n, worker, backup, fault
        self.state = "sent"
        self.sent = time.monotonic()
        self.started = None
        self.pid = None  # the worker process running it, from its own report
        self.w_start = self.w_end = None
        self.w_previous_end = None  # when the worker process's previous attempt (of any run) ended
        self.report = {}
        self.keys = None  # its round's keys
        self.kill_requested = False  # an instructor killed its worker while it ran


class Task:
    def __init__(self, kind, index, **spec):
        self.kind, self.index = kind, index
        self.id = f"{'m' if kind == 'map' else 'r'}{index}"
        self.spec = spec
        self.attempts = []
        self.committed = None  # the committed Attempt

    def live(self, include_timed_out=False):
        states = Attempt.LIVE if include_timed_out else ("sent", "running")
        return [a for a in self.attempts if a.state in states]


class Round:
    """One execution of the job over the splits (the straggler and no-combiner scenarios run two)."""

    def __init__(self, co, index, label, *, combiner, backup, faults=None, slow_worker=None, slow_ms=0.0):
        self.co, self.ctx, self.redis = co, co.ctx, co.redis
        self.index, self.label = index, label
        self.keys = Keys(co.ctx.nodes.key("mr", index))
        self.combiner, self.backup = combiner, backup
        self.faults = faults or {}
        self.slow_worker, self.slow_ms = slow_worker, slow_ms
        self.maps, self.reduces = [], []
        self.pending = deque()
        self.phase = "map"
        self.counters = {"records_in": 0, "intermediate_records": 0, "bytes_shuffled": 0, "records_out": 0}
        self.shuffle_open = False
        self.unwritten = deque()
        self.written = -1  # splits 0..written are in Redis

    # events ------------------------------------------------------------------------------------
    def data(self, **data):
        if self.label:
            data["round"] = self.index
            data["round_label"] = self.label
        return data

    def emit_task(self, task, attempt=None, state=None, **extra):
        a = attempt
        self.ctx.emit(
            "state",
            actor="coordinator",
            label=f"{task.id} {state or 'idle'}"
            + (f" on {a.worker.name}" if a else "")
            + (" (backup)" if a and a.backup else ""),
            data=self.data(
                type="task",
                task=task.id,
                kind=task.kind,
                state=state or "idle",
                attempt=a.n if a else len(task.attempts) + 1,
                backup=bool(a and a.backup),
                worker=a.worker.name if a else None,
                host=a.worker.host if a else None,
                start_ms=self.co.run_ms(a.w_start) if a and a.w_start else None,
                end_ms=self.co.run_ms(a.w_end) if a and a.w_end else None,
                records_in=a.report.get("records_in", 0) if a else 0,
                records_out=a.report.get("records_out", 0) if a else 0,
                bytes_out=a.report.get("bytes_out", 0) if a else 0,
                pid=a.pid if a else None,
                cpu_ms=a.report.get("cpu_ms") if a else None,
                **extra,
            ),
        )

    def emit_worker(self, worker, state, **extra):
        if worker.state == state and not extra:
            return
        worker.state = state
        self.ctx.emit(
            "state",
            actor=worker.name,
            label=f"{worker.name} {state}",
            data=self.data(type="worker", worker=worker.name, host=worker.host, state=state, **extra),
        )

    def metric(self, name, value):
        data = {"name": name, "value": value, "x": self.ctx.clock, "y": value}
        if self.label:
            data["series"] = self.label
        self.ctx.emit("metric", actor="coordinator", label=f"{name} {value}", data=data)

    # the round ---------------------------------------------------------------------------------
    def run(self, splits, job):
        ctx = self.ctx
        began = time.monotonic()
        self.job = job
        self.redis.set(
            self.keys.job(),
            json.dumps(
                {
                    "job": job.name,
                    "pattern": job.options.get("pattern", ""),
                    "combiner": self.combiner,
                    "reduces": self.co.reduces,
                }
            ),
        )
        # Splits are written one at a time as the maps start: the first maps run while the
        # coordinator is still writing the later splits.
        self.unwritten = deque(enumerate(splits))
        if self.label:
            ctx.emit("log", actor="coordinator", label=f"round {self.index}: {self.label}", data=self.data())
        for worker in self.co.workers:
            slow = worker.name == self.slow_worker
            self.emit_worker(worker, "slow" if slow else "up", **({"slow_ms_per_record": self.slow_ms} if slow else {}))
        ctx.emit("phase", actor="coordinator", label="map begins", data=self.data(name="map", state="begin"))
        self.maps = [Task("map", i, split=i) for i in range(len(splits))]
        for task in self.maps:
            self.emit_task(task)
        self.pending.extend(self.maps)
        while True:
            if self.unwritten:
                self.write_splits()
            self.poll(wait=0 if self.unwritten else 0.05)
            if self.phase == "map" and all(t.committed for t in self.maps):
                self.start_reduce()
            if self.phase == "reduce" and all(t.committed for t in self.reduces):
                break
            self.schedule()
        ctx.emit("phase", actor="coordinator", label="reduce ends", data=self.data(name="reduce", state="end"))
        keys = self.announce_output()
        elapsed = round((time.monotonic() - began) * 1000.0, 1)
        self.drain()
        return keys, elapsed

    def write_splits(self):
        """Writes the next split, and any other the free workers' next wave needs, so the tasks of a
        wave can leave together."""
        wave = [t.spec["split"] for t in self.pending if t.kind == "map"][: max(1, len(self.free_workers()))]
        self.write_split()
        while self.unwritten and wave and self.unwritten[0][0] <= max(wave):
            self.write_split()

    def write_split(self):
        i, elements = self.unwritten.popleft()
        key = self.keys.split(i)
        with self.redis.pipeline() as pipe:
            pipe.delete(key)
            pipe.rpush(key, *elements)
            pipe.execute()
        self.written = i

    def start_reduce(self):
        ctx = self.ctx
        ctx.emit("phase", actor="coordinator", label="map ends", data=self.data(name="map", state="end"))
        ctx.emit("phase", actor="coordinator", label="shuffle begins", data=self.data(name="shuffle", state="begin"))
        self.shuffle_open = True
        inputs = [[m.id, m.committed.n] for m in self.maps]
        self.reduces = [Task("reduce", r, partition=r, inputs=inputs) for r in range(self.co.reduces)]
        ctx.emit("phase", actor="coordinator", label="reduce begins", data=self.data(name="reduce", state="begin"))
        for task in self.reduces:
            self.emit_task(task)
        self.pending.extend(self.reduces)
        self.phase = "reduce"

    def announce_output(self):
        """The job's output, from what the committed reducers reported: its size and its top keys
        (each reducer computed its partition's share; the output itself stays in Redis, under the
        committed attempts' keys, for the checkers and anyone who reads it)."""
        ctx = self.ctx
        ctx.emit("phase", actor="coordinator", label="output begins", data=self.data(name="output", state="begin"))
        reports = [r.committed.report for r in self.reduces]
        keys = sum(rep.get("records_out", 0) for rep in reports)
        lines = sum(m.committed.report.get("records_in", 0) for m in self.maps)
        top = self.job.merge_tops([rep.get("top", []) for rep in reports])
        ctx.emit(
            "state",
            actor="coordinator",
            label=f"output: {keys} keys",
            data=self.data(type="output", job=self.job.name, top=top, keys=keys, lines=lines),
        )
        ctx.emit("phase", actor="coordinator", label="output ends", data=self.data(name="output", state="end"))
        return keys

    # watching the workers ----------------------------------------------------------------------
    def attempt_of(self, task_id, n):
        for task in self.maps + self.reduces:
            if task.id == task_id and 0 < n <= len(task.attempts):
                return task.attempts[n - 1]
        return None

    def poll(self, wait=0.05):
        ctx = self.ctx
        if ctx.cancelled.is_set():
            ctx.step()  # raises RunStopped
        key = self.keys.reports()
        if wait:
            first = self.redis.blpop([key], timeout=wait)
            raw = [first[1]] + (self.redis.lpop(key, 500) or []) if first else []
        else:
            raw = self.redis.lpop(key, 500) or []
        if raw:
            for item in raw:
                self.on_report(json.loads(item))
        self.check_liveness()

    def on_report(self, rep):
        a = self.attempt_of(rep["task"], rep["attempt"])
        if a is None:
            return
        task, worker, state = a.task, a.worker, rep["state"]
        a.pid = rep.get("pid", a.pid)
        a.w_start = rep.get("start", a.w_start)
        a.w_end = rep.get("end", a.w_end)
        a.w_previous_end = rep.get("previous_end", a.w_previous_end)
        if state == "started":
            if a.state == "sent":
                a.state, a.started = "running", time.monotonic()
            self.emit_worker(worker, "busy")
            self.emit_task(task, a, "in_progress")
            if task.kind == "reduce":
                self.shuffle_reads(task, a)
            return
        a.report = rep
        if worker.current is a:
            worker.current = None
            self.emit_worker(worker, "up")
        if a.kill_requested:
            # It was past its last check when the kill came: the worker dies in its next attempt.
            a.kill_requested, worker.kill_next = False, True
        if state == "done":
            self.commit(task, a)
        elif state == "cancelled":
            a.state = "ignored"
            self.emit_task(
                task,
                a,
                "ignored",
                reason=f"{task.id} was already committed (attempt {task.committed.n})"
                if task.committed
                else "cancelled",
            )
        elif state == "error":
            a.state = "failed"
            self.emit_task(task, a, "failed", reason=rep.get("error", ""))
            self.ctx.emit("log", actor=worker.name, label=f"{task.id} attempt {a.n} failed: {rep.get('error')}")
            self.requeue(task, f"attempt {a.n} failed: {rep.get('error')}")

    def commit(self, task, a):
        # SET NX: of all the attempts of a task that finish, exactly one is committed; the others
        # (late, or duplicates from backups and re-runs) are ignored, and their output dropped.
        if task.committed is None and self.redis.set(self.keys.commit(task.id), a.n, nx=True):
            a.state = "completed"
            task.committed = a
            self.emit_task(task, a, "completed")
            self.ctx.step()
            if task.kind == "map":
                self.map_committed(task, a)
            else:
                self.counters["records_out"] += a.report.get("records_out", 0)
                self.metric("records_out", self.counters["records_out"])
            return
        a.state = "ignored"
        winner = task.committed.n if task.committed else "?"
        self.emit_task(task, a, "ignored", reason=f"{task.id} was already committed (attempt {winner})")
        if task.kind == "map":
            self.redis.delete(*[self.keys.map_output(task.id, a.n, r) for r in range(self.co.reduces)])
        else:
            self.redis.delete(self.keys.reduce_output(task.index, a.n), self.keys.reduce_inputs(task.index, a.n))

    def map_committed(self, task, a):
        rep = a.report
        for r, part in sorted(rep.get("partitions", {}).items(), key=lambda kv: int(kv[0])):
            r = int(r)
            self.ctx.emit(
                "msg",
                actor=a.worker.name,
                to="redis",
                label=f"{task.id} -> p{r} ({human_bytes(part['bytes'])})",
                data=self.data(type="shuffle", task=task.id, partition=r, bytes=part["bytes"], records=part["records"]),
            )
            self.ctx.emit(
                "state",
                actor="redis",
                label=f"p{r} += {part['records']} records from {task.id}",
                data=self.data(
                    type="partition", partition=r, from_task=task.id, records=part["records"], bytes=part["bytes"]
                ),
            )
        c = self.counters
        c["records_in"] += rep.get("records_in", 0)
        c["intermediate_records"] += rep.get("records_out", 0)
        c["bytes_shuffled"] += rep.get("bytes_out", 0)
        for name in ("records_in", "intermediate_records", "bytes_shuffled"):
            self.metric(name, c[name])

    def shuffle_reads(self, task, a):
        r = task.index
        for m in self.maps:
            part = m.committed.report.get("partitions", {}).get(str(r), {"bytes": 0, "records": 0})
            self.ctx.emit(
                "msg",
                actor="redis",
                to=a.worker.name,
                label=f"p{r} <- {m.id} ({human_bytes(part['bytes'])})",
                data=self.data(type="shuffle", task=task.id, from_task=m.id, partition=r, bytes=part["bytes"]),
            )
        if self.shuffle_open and all(any(x.started for x in t.attempts) for t in self.reduces):
            self.shuffle_open = False
            self.ctx.emit(
                "phase", actor="coordinator", label="shuffle ends", data=self.data(name="shuffle", state="end")
            )

    def check_liveness(self):
        now = time.monotonic()
        # A timed-out attempt is still watched: if its process dies, its worker is free again.
        running = [a for t in self.maps + self.reduces for a in t.attempts if a.state in ("running", "timed_out")]
        if running:
            with self.redis.pipeline() as pipe:
                for a in running:
                    pipe.exists(self.keys.heartbeat(a.task.id, a.n))
                beating = pipe.execute()
            for a, alive in zip(running, beating, strict=True):
                if not alive:
                    self.lost(
                        a,
                        "failed",
                        "dead",
                        f"no heartbeat from {a.worker.name} for {HEARTBEAT_MS} ms: its process died",
                    )
                elif a.state == "running" and now - a.started > self.co.timeout_s:
                    a.state = "timed_out"
                    self.emit_task(
                        a.task, a, "timed_out", reason=f"not finished after {self.co.timeout_s * 1000:.0f} ms"
                    )
                    self.emit_worker(a.worker, "stalled")
                    self.requeue(a.task, "timed out")
        for t in self.maps + self.reduces:
            for a in t.attempts:
                if a.state == "sent" and now - a.sent > START_TIMEOUT_S:
                    self.lost(a, "failed", "dead", f"{a.worker.name} did not start it within {START_TIMEOUT_S:.0f} s")

    def lost(self, a, task_state, worker_state, reason):
        a.state = task_state
        self.emit_task(a.task, a, task_state, reason=reason)
        self.emit_worker(a.worker, worker_state, reason=reason)
        if a.worker.current is a:
            a.worker.current = None
        self.requeue(a.task, reason)

    def requeue(self, task, reason):
        if task.committed or task in self.pending or task.live():
            return
        if len(task.attempts) >= MAX_ATTEMPTS:
            raise RuntimeError(f"task {task.id} failed {len(task.attempts)} times; the last: {reason}")
        self.pending.appendleft(task)
        self.emit_task(task)

    # handing out work --------------------------------------------------------------------------
    def free_workers(self):
        free = [w for w in self.co.workers if w.current is None]
        return sorted(free, key=lambda w: (w.state == "dead", w.name))

    def ready(self, task):
        return not (task.kind == "map" and task.spec["split"] > self.written)  # else its split is not in Redis yet

    def schedule(self):
        if self.free_workers() and self.pending and self.ready(self.pending[0]):
            # One step boundary per wave, not per task: the tasks of a wave leave together, so they
            # run side by side even when a viewer slows the run down.
            self.ctx.step()
        sent = []
        for worker in self.free_workers():
            if not self.pending or not self.ready(self.pending[0]):
                break
            sent.append(self.dispatch(self.pending.popleft(), worker, backup=False))
        # Recorded once the whole wave is out, so the workers start it as close together as they can.
        for a in sent:
            self.emit_task(a.task, a, "in_progress")
        if self.backup and not self.pending:
            self.launch_backups()

    def launch_backups(self):
        """Near the end of a phase, an idle worker runs a second copy of a task that has been
        running for much longer than the phase's finished tasks took (the paper's backup tasks)."""
        tasks = self.maps if self.phase == "map" else self.reduces
        took = [t.committed.w_end - t.committed.w_start for t in tasks if t.committed and t.committed.w_end]
        if not took:
            return
        threshold = max(0.1, 1.5 * statistics.median(took))
        now = time.time()
        candidates = [
            t
            for t in tasks
            if not t.committed
            and len(t.live()) == 1
            and not t.live()[0].backup
            and t.live()[0].w_start
            and now - t.live()[0].w_start > threshold
        ]
        candidates.sort(key=lambda t: t.live()[0].w_start)
        if candidates and self.free_workers():
            self.ctx.step()
        for worker in self.free_workers():
            if not candidates:
                break
            a = self.dispatch(candidates.pop(0), worker, backup=True)
            self.emit_task(a.task, a, "in_progress")

    def dispatch(self, task, worker, backup):
        n = len(task.attempts) + 1
        fault = self.faults.get(task.id) if n == 1 else None
        if worker.kill_next:
            fault, worker.kill_next = "kill", False
        a = Attempt(task, n, worker, backup, fault)
        a.sent_ms = self.ctx.clock
        a.keys = self.keys
        task.attempts.append(a)
        worker.current = a
        spec = {
            "base": self.keys.base,
            "kind": task.kind,
            "task": task.id,
            "attempt": n,
            "heartbeat_ms": HEARTBEAT_MS,
            **task.spec,
        }
        if fault:
            spec["fault"] = fault
            spec["stall_ms"] = self.co.timeout_s * 1000 + 3000
        if worker.name == self.slow_worker:
            spec["slow_ms_per_record"] = self.slow_ms
        self.co.dispatcher.send(worker.host, spec)
        return a

    def drain(self):
        """Waits for attempts still out (duplicates, stalled ones) to end, so none writes after the
        run, and records them as ignored."""
        deadline = time.monotonic() + self.co.timeout_s + 10
        while time.monotonic() < deadline:
            out = [a for t in self.maps + self.reduces for a in t.attempts if a.state in Attempt.LIVE]
            if not out:
                return
            self.poll(wait=0.1)
        for t in self.maps + self.reduces:
            for a in t.attempts:
                if a.state in Attempt.LIVE:
                    a.state = "ignored"
                    self.emit_task(t, a, "ignored", reason="still running when the job ended")


def read_committed_output(redis, keys, reduces):
    """{key: value} from the committed reduce attempts (by their commit keys); nothing uncommitted."""
    output = {}
    for r in range(reduces):
        attempt = redis.get(keys.commit(f"r{r}"))
        if attempt is None:
            continue
        raw = redis.get(keys.reduce_output(r, attempt))
        for key, value in json.loads(raw or "[]"):
            output[key] = value
    return output


class Coordinator:
    def __init__(self, ctx, dispatcher, *, reduces, timeout_ms):
        self.ctx, self.dispatcher = ctx, dispatcher
        self.redis = ctx.nodes.redis()
        self.reduces = reduces
        self.timeout_s = timeout_ms / 1000.0
        self.wall0, self.clock0 = time.time(), ctx.clock
        self.workers = []
        ctx.on_fault("kill", self.kill)

    def kill(self, target, **options):
        """The run page's "kill" on a worker: the process running its attempt SIGKILLs itself at the
        attempt's next check (a real death, on whichever host it runs); an idle worker's next
        attempt dies instead."""
        worker = next((w for w in self.workers if w.name == target), None)
        if worker is None:
            raise ValueError(f"{target} is not one of this run's workers ({', '.join(w.name for w in self.workers)})")
        a = worker.current
        if a is not None and a.state in ("sent", "running"):
            a.kill_requested = True
            self.redis.set(a.keys.kill(a.task.id, a.n), 1, ex=TTL_S)
            return {"worker": worker.name, "host": worker.host, "attempt": f"{a.task.id}#{a.n}"}
        worker.kill_next = True
        return {"worker": worker.name, "host": worker.host, "attempt": "its next one"}

    def run_ms(self, wall):
        """A worker's own timestamp (time.time() on its host) as milliseconds of this run."""
        return round(self.clock0 + (wall - self.wall0) * 1000.0, 2)

    def discover(self, wanted):
        hosts = self.dispatcher.workers()
        if not hosts:
            raise NoWorkersError(
                f"no MapReduce workers are running; start them with `{START_COMMAND}` (one per worker)"
            )
        used = sorted(hosts)[:wanted]
        self.dispatcher.prepare(used)
        self.workers = [WorkerState(f"w{i + 1}", host) for i, host in enumerate(used)]
        for w in self.workers:
            self.ctx.emit(
                "state",
                actor=w.name,
                label=f"{w.name} up ({w.host})",
                data={"type": "worker", "worker": w.name, "host": w.host, "state": "up"},
            )
        if len(hosts) < wanted:
            self.ctx.emit(
                "log",
                actor="coordinator",
                label=f"{wanted} workers asked for, {len(hosts)} running: using {len(hosts)}",
            )
        return self.workers


def fault_schedule(rng, maps, reduces, kill_percent, stall_percent):
    """Which first attempts die (SIGKILL mid-task) or stall past the timeout, drawn from the seed;
    at least one map attempt is killed and, with two maps or more, one stalls."""
    faults = {}
    for task in [f"m{i}" for i in range(maps)] + [f"r{r}" for r in range(reduces)]:
        roll = rng.random() * 100
        if roll < kill_percent:
            faults[task] = "kill"
        elif roll < kill_percent + stall_percent:
            faults[task] = "stall"
    map_ids = [f"m{i}" for i in range(maps)]
    if "kill" not in [faults.get(m) for m in map_ids]:
        faults[rng.choice(map_ids)] = "kill"
    if maps >= 2 and "stall" not in faults.values():
        faults[rng.choice([m for m in map_ids if faults.get(m) != "kill"])] = "stall"
    return faults


def run(ctx, dispatcher, *, job_name, mode="plain", upload=None, docs=None, reference=True):
    """Runs the job (mode: plain, worker-crash, straggler or no-combiner) and its sequential
    reference; returns what the checkers need. `docs` replaces the input named by the parameters
    (the benchmark's large corpus), and `reference=False` skips the reference."""
    p = ctx.params
    job = make_job(job_name, p.get("pattern", ""))
    co = Coordinator(ctx, dispatcher, reduces=p["reduces"], timeout_ms=p["task_timeout_ms"])
    co.discover(p["workers"])

    ctx.emit("phase", actor="coordinator", label="split begins", data={"name": "split", "state": "begin"})
    split_began = time.monotonic()
    if docs is None:
        docs = corpus.documents(p["input"], size_limit=p["size_limit"], seed=ctx.seed, upload=upload)
    splits = corpus.split(docs, p["maps"])
    encoded = []
    for i, chunks in enumerate(splits):
        names = list(dict.fromkeys(c[0] for c in chunks))
        elements, text_bytes = encode_split(chunks)
        encoded.append(elements)
        ctx.emit(
            "state",
            actor="coordinator",
            label=f"split {i}: {human_bytes(text_bytes)} from {names[0]}"
            + (f" +{len(names) - 1}" if len(names) > 1 else ""),
            data={
                "type": "split",
                "split": i,
                "bytes": text_bytes,
                "records": sum(c[3] for c in chunks),
                "source": "upload" if p["input"] == "upload" else names[0],
                "documents": len(names),
            },
        )
    if len(splits) < p["maps"]:
        ctx.emit(
            "log",
            actor="coordinator",
            label=f"the input has only {len(splits)} splits' worth of lines for {p['maps']} maps",
        )
    ctx.emit("phase", actor="coordinator", label="split ends", data={"name": "split", "state": "end"})
    split_ms = round((time.monotonic() - split_began) * 1000.0, 1)

    plan = []
    if mode == "straggler":
        slow = co.workers[ctx.rng.randrange(len(co.workers))].name if len(co.workers) > 1 else None
        if slow is None:
            ctx.emit(
                "log", actor="coordinator", label="one worker only: no worker is made slow, backups have nowhere to run"
            )
        for i, backup in enumerate((False, True), start=1):
            plan.append(
                Round(
                    co,
                    i,
                    f"backup tasks {'on' if backup else 'off'}",
                    combiner=p["combiner"],
                    backup=backup,
                    slow_worker=slow,
                    slow_ms=p["slow_ms_per_record"],
                )
            )
    elif mode == "no-combiner":
        for i, combiner in enumerate((True, False), start=1):
            plan.append(
                Round(co, i, f"combiner {'on' if combiner else 'off'}", combiner=combiner, backup=p["backup_tasks"])
            )
    else:
        faults = {}
        if mode == "worker-crash":
            faults = fault_schedule(ctx.rng, len(splits), p["reduces"], p["kill_percent"], p["stall_percent"])
            ctx.emit(
                "log",
                actor="coordinator",
                label="fault schedule: " + ", ".join(f"{t} {f}" for t, f in sorted(faults.items())),
                data={"faults": faults},
            )
        plan.append(Round(co, 1, "", combiner=p["combiner"], backup=p["backup_tasks"], faults=faults))

    rounds = []
    for rnd in plan:
        keys, elapsed = rnd.run(encoded, job)
        rnd.metric("elapsed_ms", elapsed)
        rounds.append({"round": rnd, "output_keys": keys, "elapsed_ms": elapsed})

    if mode == "straggler":
        off, on = rounds[0]["elapsed_ms"], rounds[1]["elapsed_ms"]
        for name, value in (("elapsed_ms_backup_off", off), ("elapsed_ms_backup_on", on)):
            ctx.emit("metric", actor="coordinator", label=f"{name} {value}", data={"name": name, "value": value})
        comparison(
            ctx, "Job time with one slow worker", [("backup tasks off", off, "ms"), ("backup tasks on", on, "ms")]
        )
    if mode == "no-combiner":
        on, off = (r["round"].counters["bytes_shuffled"] for r in rounds)
        ctx.emit(
            "metric",
            actor="coordinator",
            label=f"bytes_shuffled_no_combiner {off}",
            data={"name": "bytes_shuffled_no_combiner", "value": off},
        )
        comparison(ctx, "Bytes shuffled", [("with the combiner", on, "bytes"), ("without the combiner", off, "bytes")])

    expected = None
    if reference:
        ctx.emit("phase", actor="coordinator", label="reference begins", data={"name": "reference", "state": "begin"})
        began = time.monotonic()
        expected = job.reference([(doc, first, text) for chunks in splits for doc, first, text, _ in chunks])
        ms = round((time.monotonic() - began) * 1000.0, 1)
        ctx.emit(
            "state",
            actor="reference",
            label=f"sequential reference: {len(expected)} keys in {ms} ms",
            data={"type": "reference", "job": job.name, "keys": len(expected), "ms": ms, "top": job.top(expected)},
        )
        ctx.emit("phase", actor="coordinator", label="reference ends", data={"name": "reference", "state": "end"})
    ctx.emit("phase", actor="coordinator", label="check begins", data={"name": "check", "state": "begin"})
    return {
        "job": job.name,
        "split_ms": split_ms,
        "reference": expected,
        "workers": {w.name: w.host for w in co.workers},
        "reduces": co.reduces,
        "rounds": [summarise(r["round"], r["elapsed_ms"]) for r in rounds],
    }


def comparison(ctx, title, rows):
    ctx.emit(
        "state",
        actor="coordinator",
        label=title + ": " + ", ".join(f"{label} {value:g} {unit}" for label, value, unit in rows),
        data={
            "type": "comparison",
            "title": title,
            "rows": [{"label": lb, "value": v, "unit": u} for lb, v, u in rows],
        },
    )


def summarise(rnd, elapsed_ms):
    def attempt(a):
        return {
            "attempt": a.n,
            "state": a.state,
            "worker": a.worker.name,
            "backup": a.backup,
            "fault": a.fault,
            "pid": a.pid,
            "cpu_ms": a.report.get("cpu_ms"),
            "sent_ms": a.sent_ms,
            "start_ms": rnd.co.run_ms(a.w_start) if a.w_start else None,
            "end_ms": rnd.co.run_ms(a.w_end) if a.w_end else None,
            "previous_end_ms": rnd.co.run_ms(a.w_previous_end) if a.w_previous_end else None,
            "records_in": a.report.get("records_in", 0),
            "records_out": a.report.get("records_out", 0),
        }

    return {
        "index": rnd.index,
        "label": rnd.label,
        "base": rnd.keys.base,
        "elapsed_ms": elapsed_ms,
        "counters": dict(rnd.counters),
        "tasks": [
            {
                "task": t.id,
                "kind": t.kind,
                "committed": t.committed.n if t.committed else None,
                "attempts": [attempt(a) for a in t.attempts],
            }
            for t in rnd.maps + rnd.reduces
        ],
    }
