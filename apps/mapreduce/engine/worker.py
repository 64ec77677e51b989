"""What a MapReduce worker does with one task attempt: plain Python over a Redis client, called by
the Celery task in apps/mapreduce/tasks.py.

Everything lives in the lab Redis under the round's base key (see `Keys`), so a worker on any host
can read its input. An attempt writes only under its own attempt-specific keys and reports to the
coordinator through the round's report list; the coordinator commits exactly one attempt per task.
While it works, the attempt refreshes a heartbeat key with a short TTL: if the process dies, the
key expires and the coordinator re-runs the task.
"""

import gc
import json
import os
import signal
import threading
import time
from collections import defaultdict

from .jobs import make_job, partition, partition_combined

TTL_S = 900  # anything a worker writes expires, even if the run's clean-up ran before it finished


class Keys:
    def __init__(self, base):
        self.base = base

    def job(self):
        return f"{self.base}:job"

    def split(self, i):
        return f"{self.base}:split:{i}"

    def reports(self):
        return f"{self.base}:reports"

    def map_output(self, task, attempt, r):
        return f"{self.base}:map:{task}:{attempt}:p{r}"

    def reduce_output(self, r, attempt):
        return f"{self.base}:out:{r}:{attempt}"

    def reduce_inputs(self, r, attempt):
        return f"{self.base}:in:{r}:{attempt}"

    def heartbeat(self, task, attempt):
        return f"{self.base}:hb:{task}:{attempt}"

    def commit(self, task):
        return f"{self.base}:commit:{task}"

    def kill(self, task, attempt):
        """Set by the coordinator when an instructor kills the worker running this attempt."""
        return f"{self.base}:kill:{task}:{attempt}"

    def pattern(self):
        return f"{self.base}:*"


def encode_split(chunks):
    """A split as stored in Redis, a list: a JSON header [[document, lines before, lines], ...], then
    each chunk's UTF-8 text as an element of its own (no JSON escaping of megabytes of text, and no
    copy into one big value). Returns (elements, bytes of text)."""
    parts = [text.encode("utf-8", "surrogatepass") for _, _, text, _ in chunks]
    header = json.dumps([[doc, first, records] for doc, first, _, records in chunks]).encode()
    return [header, *parts], sum(len(p) for p in parts)


def decode_split(elements):
    header, *parts = elements
    # Decoded chunk by chunk: one non-ASCII character would make a joined string wider, and slower.
    return [
        [doc, first, part.decode("utf-8", "surrogatepass"), records]
        for (doc, first, records), part in zip(json.loads(header), parts, strict=True)
    ]


class Cancelled(Exception):
    """The task was committed by another attempt: this one stops and is ignored."""


class Heartbeat(threading.Thread):
    def __init__(self, client, key, ttl_ms, host):
        super().__init__(name=f"heartbeat {key}", daemon=True)
        self.client, self.key, self.ttl_ms, self.host = client, key, ttl_ms, host
        self.done = threading.Event()
        self.client.set(self.key, host, px=ttl_ms)

    def run(self):
        while not self.done.wait(self.ttl_ms / 4000.0):
            try:
                self.client.set(self.key, self.host, px=self.ttl_ms)
            except Exception:  # noqa: BLE001 - a missed beat is what the coordinator watches for
                pass

    def stop(self):
        # The key is left to expire: the completion report is already pushed, so the coordinator
        # sees it before the heartbeat goes.
        self.done.set()


class Attempt:
    def __init__(self, spec, client, host):
        self.spec, self.client, self.host = spec, client, host
        self.keys = Keys(spec["base"])
        self.task, self.attempt = spec["task"], spec["attempt"]
        self.commit_key = self.keys.commit(self.task)
        self.slow_s = spec.get("slow_ms_per_record", 0) / 1000.0
        self.fault = spec.get("fault")
        self.began = time.time()
        self.cpu0 = time.process_time()

    def report(self, state, **data):
        payload = {"state": state, "task": self.task, "attempt": self.attempt, "host": self.host, "pid": os.getpid()}
        payload.update(data)
        with self.client.pipeline() as pipe:
            pipe.rpush(self.keys.reports(), json.dumps(payload))
            pipe.expire(self.keys.reports(), TTL_S)
            pipe.execute()

    def check_cancelled(self):
        """Stops when another attempt was committed, or when the round is gone (the run was
        stopped and cleaned up); dies when an instructor killed this worker."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.commit_key)
            pipe.exists(self.keys.job())
            pipe.exists(self.keys.kill(self.task, self.attempt))
            committed, round_exists, killed = pipe.execute()
        if killed:
            self.die()
        if committed or not round_exists:
            raise Cancelled()

    def pace(self, records):
        """The straggler's slowness, and the stalls of the worker-crash scenario: sleeping in small
        steps so a committed task's other attempt stops soon after."""
        if self.slow_s and records:
            self.sleep(records * self.slow_s)

    def sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            self.check_cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def die(self):
        """A real crash: this process is killed by the kernel, mid-task, its partial output left behind."""
        os.kill(os.getpid(), signal.SIGKILL)

    def run(self):
        if not self.client.exists(self.keys.job()):
            return "stale"  # the round is over (or was cleaned up): nothing to do
        job_spec = json.loads(self.client.get(self.keys.job()) or "{}")
        self.job = make_job(job_spec["job"], job_spec.get("pattern", ""))
        self.combiner = job_spec.get("combiner", True)
        self.reduces = job_spec["reduces"]
        if self.client.exists(self.commit_key):
            self.report("cancelled", start=self.began, end=time.time())
            return "cancelled"
        beat = Heartbeat(
            self.client, self.keys.heartbeat(self.task, self.attempt), self.spec["heartbeat_ms"], self.host
        )
        beat.start()
        self.report("started", start=self.began)
        try:
            if self.fault == "stall":
                self.sleep(self.spec["stall_ms"] / 1000.0)
            result = self.run_map() if self.spec["kind"] == "map" else self.run_reduce()
            cpu_ms = round((time.process_time() - self.cpu0) * 1000.0, 1)
            self.report("done", start=self.began, end=time.time(), cpu_ms=cpu_ms, **result)
            return "done"
        except Cancelled:
            self.report("cancelled", start=self.began, end=time.time())
            return "cancelled"
        except Exception as exc:  # noqa: BLE001 - reported to the coordinator, which retries the task
            self.report("error", start=self.began, end=time.time(), error=f"{type(exc).__name__}: {exc}")
            return "error"
        finally:
            beat.stop()

    def run_map(self):
        elements = self.client.lrange(self.keys.split(self.spec["split"]), 0, -1)
        if not elements:
            raise RuntimeError(f"input split {self.spec['split']} is missing")
        chunks = decode_split(elements)
        job, reduces = self.job, self.reduces
        records_in = records_out = 0
        if self.combiner:
            acc = {}
            for i, (doc, first, text, n) in enumerate(chunks):
                if i % 16 == 0 or self.slow_s:
                    self.check_cancelled()
                records_in += n
                acc = job.accumulate(acc, doc, first, text)
                self.pace(n)
            parts = partition_combined(acc, reduces)
        else:
            parts = defaultdict(list)
            for doc, first, text, n in chunks:
                self.check_cancelled()
                records_in += n
                for key, value in job.pairs(doc, first, text):
                    parts[partition(key, reduces)].append([key, value])
                self.pace(n)
            parts = [parts.get(r, []) for r in range(reduces)]
        partitions = {}
        for r in range(reduces):
            payload = json.dumps(parts[r], separators=(",", ":")).encode()
            self.client.set(self.keys.map_output(self.task, self.attempt, r), payload, ex=TTL_S)
            records = len(parts[r])
            records_out += records
            partitions[str(r)] = {"records": records, "bytes": len(payload)}
            if self.fault == "kill":
                self.die()  # after writing part of its output, which no reducer will ever read
        return {
            "records_in": records_in,
            "records_out": records_out,
            "bytes_out": sum(p["bytes"] for p in partitions.values()),
            "partitions": partitions,
        }

    def run_reduce(self):
        r = self.spec["partition"]
        inputs, records_in, read = [], 0, []
        for task, attempt in self.spec["inputs"]:
            self.check_cancelled()
            raw = self.client.get(self.keys.map_output(task, attempt, r))
            if raw is None:
                raise RuntimeError(f"the committed output of {task} (attempt {attempt}) for partition {r} is missing")
            pairs = json.loads(raw)
            inputs.append(pairs)
            records_in += len(pairs)
            read.append([task, attempt, len(pairs), len(raw)])
        reduced = self.job.reduce_partition(inputs)
        out = [[key, reduced[key]] for key in sorted(reduced)]
        self.pace(len(out))
        payload = json.dumps(out, separators=(",", ":")).encode()
        inputs = json.dumps(read)
        if self.fault == "kill":
            self.client.set(self.keys.reduce_output(r, self.attempt), payload[: len(payload) // 2], ex=TTL_S)
            self.die()
        with self.client.pipeline() as pipe:
            pipe.set(self.keys.reduce_output(r, self.attempt), payload, ex=TTL_S)
            pipe.set(self.keys.reduce_inputs(r, self.attempt), inputs, ex=TTL_S)
            pipe.execute()
        top = self.job.partial_top(reduced)
        return {"records_in": records_in, "records_out": len(out), "bytes_out": len(payload), "read": read, "top": top}


def run_attempt(spec, client, host):
    """Runs one attempt of a map or reduce task; returns how it ended."""
    # Every container an attempt builds (pairs, groups, parsed partitions) lives until its output
    # is written: automatic collections would only scan them, and the worker's heap, again and
    # again (a reduce took 2-3 times longer with them).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return Attempt(spec, client, host).run()
    finally:
        if collecting:
            gc.enable()
