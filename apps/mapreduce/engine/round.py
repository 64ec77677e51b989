"""One round of a MapReduce job (the paper's master at work): the map tasks over the splits, then
the reduce tasks over the partitions, handed to idle workers one wave at a time; heartbeats and
timeouts watched, failed tasks run again, backup copies of stragglers near the end of a phase, and
exactly one attempt of every task committed. The straggler and no-combiner scenarios run two rounds
of the same job."""

import json
import statistics
import time
from collections import deque

from .events import RoundEvents
from .model import Attempt, Task
from .output import peak_running
from .sizes import human_bytes
from .worker import Keys

MAX_ATTEMPTS = 4
START_TIMEOUT_S = 15.0  # a task sent to a worker that never picks it up is given to another
HEARTBEAT_MS = 1000


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
        self.events = RoundEvents(self.ctx, index, label, co.run_ms)
        self.peak = {}  # "map"/"reduce" -> the most attempts running at once, by the workers' clocks

    def command(self, command, call):
        """One Redis command of the coordinator's, recorded as a `cmd` event. Only those that change
        the job's state are: the polls of the report list and the heartbeats (every 50 ms) are not."""
        return self.ctx.cmd("redis", command, call, actor="coordinator")

    # the round ---------------------------------------------------------------------------------
    def run(self, splits, job):
        ctx = self.ctx
        began = time.monotonic()
        self.job = job
        spec = json.dumps(
            {
                "job": job.name,
                "pattern": job.options.get("pattern", ""),
                "combiner": self.combiner,
                "reduces": self.co.reduces,
            }
        )
        self.command(f"SET {self.keys.job()} '{spec}'", lambda: self.redis.set(self.keys.job(), spec))
        # Splits are written one at a time as the maps start: the first maps run while the
        # coordinator is still writing the later splits.
        self.unwritten = deque(enumerate(splits))
        if self.label:
            ctx.emit("log", actor="coordinator", label=f"round {self.index}: {self.label}", data=self.events.data())
        for worker in self.co.workers:
            slow = worker.name == self.slow_worker
            self.events.worker(
                worker, "slow" if slow else "up", **({"slow_ms_per_record": self.slow_ms} if slow else {})
            )
        self.events.phase("map", "begin")
        self.maps = [Task("map", i, split=i) for i in range(len(splits))]
        for task in self.maps:
            self.events.task(task)
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
        self.events.phase("reduce", "end")
        keys = self.announce_output()
        elapsed = round((time.monotonic() - began) * 1000.0, 1)
        self.drain()
        self.measure_parallelism()
        return keys, elapsed

    def measure_parallelism(self):
        """How many attempts ran at once in each phase, from the workers' own start and end times: a
        measurement shown beside the verdict, not an invariant (a loaded machine, or a worker
        restarted after a SIGKILL, may serialise a correct job)."""
        for kind, tasks in (("map", self.maps), ("reduce", self.reduces)):
            spans = [(a.w_start, a.w_end) for t in tasks for a in t.attempts if a.w_start and a.w_end]
            self.peak[kind] = peak_running(spans)
            self.events.metric(f"peak_{kind}s_running", self.peak[kind])

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

        def write():
            with self.redis.pipeline() as pipe:
                pipe.delete(key)
                pipe.rpush(key, *elements)
                return pipe.execute()[-1]

        text = human_bytes(sum(len(e) for e in elements[1:]))
        self.command(f"DEL {key}; RPUSH {key} <header> <{len(elements) - 1} chunks, {text}>", write)
        self.written = i

    def start_reduce(self):
        self.events.phase("map", "end")
        self.events.phase("shuffle", "begin")
        self.shuffle_open = True
        inputs = [[m.id, m.committed.n] for m in self.maps]
        self.reduces = [Task("reduce", r, partition=r, inputs=inputs) for r in range(self.co.reduces)]
        self.events.phase("reduce", "begin")
        for task in self.reduces:
            self.events.task(task)
        self.pending.extend(self.reduces)
        self.phase = "reduce"

    def announce_output(self):
        """The job's output, from what the committed reducers reported: its size and its top keys
        (each reducer computed its partition's share; the output itself stays in Redis, under the
        committed attempts' keys, for the checkers and the part files kept when the job is over)."""
        ctx = self.ctx
        self.events.phase("output", "begin")
        reports = [r.committed.report for r in self.reduces]
        keys = sum(rep.get("records_out", 0) for rep in reports)
        lines = sum(m.committed.report.get("records_in", 0) for m in self.maps)
        top = self.job.merge_tops([rep.get("top", []) for rep in reports])
        ctx.emit(
            "state",
            actor="coordinator",
            label=f"output: {keys} keys",
            data=self.events.data(type="output", job=self.job.name, top=top, keys=keys, lines=lines),
        )
        self.events.phase("output", "end")
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
        if state == "started":
            if a.state == "sent":
                a.state, a.started = "running", time.monotonic()
            self.events.worker(worker, "busy")
            self.events.task(task, a, "in_progress")
            if task.kind == "reduce":
                self.shuffle_reads(task, a)
            return
        a.report = rep
        if worker.current is a:
            worker.current = None
            self.events.worker(worker, "up")
        if a.kill_requested:
            # It was past its last check when the kill came: the worker dies in its next attempt.
            a.kill_requested, worker.kill_next = False, True
        if state == "done":
            self.commit(task, a)
        elif state == "cancelled":
            a.state = "ignored"
            self.events.task(
                task,
                a,
                "ignored",
                reason=f"{task.id} was already committed (attempt {task.committed.n})"
                if task.committed
                else "cancelled",
            )
        elif state == "error":
            a.state = "failed"
            self.events.task(task, a, "failed", reason=rep.get("error", ""))
            self.ctx.emit("log", actor=worker.name, label=f"{task.id} attempt {a.n} failed: {rep.get('error')}")
            self.requeue(task, f"attempt {a.n} failed: {rep.get('error')}")

    def commit(self, task, a):
        # SET NX: of all the attempts of a task that finish, exactly one is committed; the others
        # (late, or duplicates from backups and re-runs) are ignored, and their output dropped.
        key = self.keys.commit(task.id)
        if task.committed is None and self.command(f"SET {key} {a.n} NX", lambda: self.redis.set(key, a.n, nx=True)):
            a.state = "completed"
            task.committed = a
            self.events.task(task, a, "completed")
            self.ctx.step()
            if task.kind == "map":
                self.map_committed(task, a)
            else:
                self.counters["records_out"] += a.report.get("records_out", 0)
                self.events.metric("records_out", self.counters["records_out"])
            return
        a.state = "ignored"
        winner = task.committed.n if task.committed else "?"
        self.events.task(task, a, "ignored", reason=f"{task.id} was already committed (attempt {winner})")
        if task.kind == "map":
            dropped = [self.keys.map_output(task.id, a.n, r) for r in range(self.co.reduces)]
        else:
            dropped = [self.keys.reduce_output(task.index, a.n), self.keys.reduce_inputs(task.index, a.n)]
        self.command(f"DEL {' '.join(dropped)}", lambda: self.redis.delete(*dropped))

    def map_committed(self, task, a):
        rep = a.report
        for r, part in sorted(rep.get("partitions", {}).items(), key=lambda kv: int(kv[0])):
            r = int(r)
            self.ctx.emit(
                "msg",
                actor=a.worker.name,
                to="redis",
                label=f"{task.id} -> p{r} ({human_bytes(part['bytes'])})",
                data=self.events.data(
                    type="shuffle", task=task.id, partition=r, bytes=part["bytes"], records=part["records"]
                ),
            )
            self.ctx.emit(
                "state",
                actor="redis",
                label=f"p{r} += {part['records']} records from {task.id}",
                data=self.events.data(
                    type="partition", partition=r, from_task=task.id, records=part["records"], bytes=part["bytes"]
                ),
            )
        c = self.counters
        c["records_in"] += rep.get("records_in", 0)
        c["intermediate_records"] += rep.get("records_out", 0)
        c["bytes_shuffled"] += rep.get("bytes_out", 0)
        for name in ("records_in", "intermediate_records", "bytes_shuffled"):
            self.events.metric(name, c[name])

    def shuffle_reads(self, task, a):
        r = task.index
        for m in self.maps:
            part = m.committed.report.get("partitions", {}).get(str(r), {"bytes": 0, "records": 0})
            self.ctx.emit(
                "msg",
                actor="redis",
                to=a.worker.name,
                label=f"p{r} <- {m.id} ({human_bytes(part['bytes'])})",
                data=self.events.data(type="shuffle", task=task.id, from_task=m.id, partition=r, bytes=part["bytes"]),
            )
        if self.shuffle_open and all(any(x.started for x in t.attempts) for t in self.reduces):
            self.shuffle_open = False
            self.events.phase("shuffle", "end")

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
                    self.events.task(
                        a.task, a, "timed_out", reason=f"not finished after {self.co.timeout_s * 1000:.0f} ms"
                    )
                    self.events.worker(a.worker, "stalled")
                    self.requeue(a.task, "timed out")
        for t in self.maps + self.reduces:
            for a in t.attempts:
                if a.state == "sent" and now - a.sent > START_TIMEOUT_S:
                    self.lost(a, "failed", "dead", f"{a.worker.name} did not start it within {START_TIMEOUT_S:.0f} s")

    def lost(self, a, task_state, worker_state, reason):
        a.state = task_state
        self.events.task(a.task, a, task_state, reason=reason)
        self.events.worker(a.worker, worker_state, reason=reason)
        if a.worker.current is a:
            a.worker.current = None
        self.requeue(a.task, reason)

    def requeue(self, task, reason):
        if task.committed or task in self.pending or task.live():
            return
        if len(task.attempts) >= MAX_ATTEMPTS:
            raise RuntimeError(f"task {task.id} failed {len(task.attempts)} times; the last: {reason}")
        self.pending.appendleft(task)
        self.events.task(task)

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
            self.events.task(a.task, a, "in_progress")
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
            self.events.task(a.task, a, "in_progress")

    def dispatch(self, task, worker, backup):
        n = len(task.attempts) + 1
        fault = self.faults.get(task.id) if n == 1 else None
        if worker.kill_next:
            fault, worker.kill_next = "kill", False
        a = Attempt(task, n, worker, backup, fault)
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
                    self.events.task(t, a, "ignored", reason="still running when the job ended")
