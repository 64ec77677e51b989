"""The MapReduce coordinator (the paper's master): finds the workers, splits the input, runs the
scenario's rounds of the job (engine/round.py), and keeps the job's output as part files when it is
over.

Plain Python: workers are reached through a dispatcher (apps/mapreduce/tasks.py sends Celery
tasks), and all data goes through the run's keys on the lab Redis (ctx.nodes.redis()).
"""

import time
from pathlib import Path

from . import corpus
from .jobs import make_job
from .model import WorkerState
from .output import committed_partitions, write_parts
from .round import Round
from .sizes import human_bytes
from .worker import TTL_S, encode_split

START_COMMAND = "celery -A labsite worker -Q mapreduce -c 1 -n mr1@%h"


class NoWorkersError(RuntimeError):
    pass


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
            key = a.keys.kill(a.task.id, a.n)
            self.ctx.cmd(
                "redis", f"SET {key} 1 EX {TTL_S}", lambda: self.redis.set(key, 1, ex=TTL_S), actor="coordinator"
            )
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


def run(ctx, dispatcher, *, job_name, mode="plain", upload=None, docs=None, output_dir=None):
    """Runs the job (mode: plain, worker-crash, straggler or no-combiner); returns what the checkers
    need. `docs` replaces the input named by the parameters (the benchmark's large corpus). With
    `output_dir`, the job's output is kept there as part files (engine/output.py): the last round's,
    as every round computes the same job on the same input."""
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
        rnd.events.metric("elapsed_ms", elapsed)
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

    if output_dir is not None:
        last = rounds[-1]["round"]
        lines = write_parts(Path(output_dir), committed_partitions(co.redis, last.keys, co.reduces))
        ctx.emit(
            "log",
            actor="coordinator",
            label=f"output kept: {lines} lines in {co.reduces} part files",
            data={"type": "output_kept", "parts": co.reduces, "lines": lines},
        )
    ctx.emit("phase", actor="coordinator", label="check begins", data={"name": "check", "state": "begin"})
    return {
        "job": job.name,
        "split_ms": split_ms,
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
            "start_ms": rnd.co.run_ms(a.w_start) if a.w_start else None,
            "end_ms": rnd.co.run_ms(a.w_end) if a.w_end else None,
            "records_in": a.report.get("records_in", 0),
            "records_out": a.report.get("records_out", 0),
        }

    return {
        "index": rnd.index,
        "label": rnd.label,
        "base": rnd.keys.base,
        "elapsed_ms": elapsed_ms,
        "counters": dict(rnd.counters),
        "peak_running": dict(rnd.peak),
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
