"""Invariants of the MapReduce lab. They trust nothing the coordinator says it did: the reference is
computed here from the input documents, read again from the corpus files or the uploaded file, and
the output, the commit keys and what each committed reducer read are read back from the lab Redis
over a connection of their own.

How many tasks ran at once is a measurement (the coordinator's `peak_*_running` metrics, from the
workers' own clocks), not an invariant: a correct job on a loaded machine may run one at a time."""

import json
import time
from collections import Counter
from contextlib import closing

import redis

from apps.runs.engine_api import Check, Context
from apps.runs.registry import counted

from .engine import corpus
from .engine.jobs import make_job
from .engine.output import read_committed_output
from .engine.worker import Keys

MISSING = "(missing)"


def _short(value):
    text = json.dumps(value, default=str)
    return value if len(text) <= 200 else text[:200] + "…"


def lab_redis(ctx: Context) -> redis.Redis:
    """A new connection to the run's Redis, not the one the engine used."""
    return redis.Redis.from_url(ctx.nodes.redis_url, socket_timeout=10, decode_responses=True)


def input_documents(params: dict, seed: int) -> list[tuple[str, str]]:
    """The run's input documents [(name, text)], read again from where the run read them."""
    upload = None
    if params["input"] == "upload":
        from .uploads import read_text

        upload = read_text(params["upload"])
    return corpus.documents(params["input"], size_limit=params["size_limit"], seed=seed, upload=upload)


def sequential_reference(ctx: Context, job_name: str) -> tuple[dict, float]:
    """The job's output computed in this process from the whole documents (no splits), as JSON
    would carry it; and how long that took (ms)."""
    began = time.monotonic()
    job = make_job(job_name, ctx.params.get("pattern", ""))
    docs = input_documents(ctx.params, ctx.seed)
    reference = job.reference([(name, 0, text) for name, text in docs])
    ms = round((time.monotonic() - began) * 1000.0, 1)
    return json.loads(json.dumps(reference)), ms


def output_matches_reference(ctx: Context, result: dict | None) -> Check:
    """Every round's committed output, read back from Redis, equals the sequential reference."""
    if not result:
        return Check(None, "the run ended before its output")
    reference, ms = sequential_reference(ctx, result["job"])
    rounds, held = [], True
    with closing(lab_redis(ctx)) as client:
        for rnd in result["rounds"]:
            output = read_committed_output(client, Keys(rnd["base"]), result["reduces"])
            differing = []
            if output != reference:
                held = False
                for key in sorted(set(output) | set(reference)):
                    if output.get(key, MISSING) != reference.get(key, MISSING):
                        got, want = output.get(key, MISSING), reference.get(key, MISSING)
                        differing.append({"key": key, "output": _short(got), "reference": _short(want)})
                        if len(differing) == 5:
                            break
            rounds.append({"round": rnd["label"] or rnd["index"], "keys": len(output), "first_differences": differing})
    differ = [r for r in rounds if r["first_differences"]]
    if differ:
        first = differ[0]["first_differences"][0]
        summary = (
            f"the output differs from the reference in {len(differ)} of {counted(len(rounds), 'round')}; first, key "
            f"{first['key']!r}: {json.dumps(first['output'])} instead of {json.dumps(first['reference'])}"
        )
    else:
        summary = f"every round's output equals the reference's {counted(len(reference), 'key')}"
    evidence = {
        "summary": summary,
        "job": result["job"],
        "reference_keys": len(reference),
        "reference_ms": ms,
        "rounds": rounds,
    }
    return Check(held, evidence)


def _round_problems(client: redis.Redis, rnd: dict, reduces: int) -> tuple[list[str], int]:
    """What breaks "each task counted once" in one round, read from Redis; and the records the
    committed maps wrote."""
    keys = Keys(rnd["base"])
    problems = []
    commits = {}
    for t in rnd["tasks"]:
        stored = client.get(keys.commit(t["task"]))
        commits[t["task"]] = int(stored) if stored is not None else None
        if commits[t["task"]] is None:
            problems.append(f"{t['task']} has no committed attempt")
    maps = [t["task"] for t in rnd["tasks"] if t["kind"] == "map"]
    written = 0
    for m in maps:
        if commits[m] is None:
            continue
        for r in range(reduces):
            raw = client.get(keys.map_output(m, commits[m], r))
            if raw is None:
                problems.append(f"the committed output of {m} for partition {r} is missing")
            else:
                written += len(json.loads(raw))
    read_records = 0
    for r in range(reduces):
        attempt = commits.get(f"r{r}")
        if attempt is None:
            continue
        raw = client.get(keys.reduce_inputs(r, attempt))
        if raw is None:
            problems.append(f"r{r}: the committed attempt recorded no inputs")
            continue
        read = json.loads(raw)
        times = Counter(task for task, _, _, _ in read)
        for m in maps:
            if times[m] != 1:
                problems.append(f"r{r} read {m} {times[m]} times")
        for task, used, records, _ in read:
            if commits.get(task) is not None and used != commits[task]:
                problems.append(f"r{r} read attempt {used} of {task}, not its committed attempt {commits[task]}")
            read_records += records
    if read_records != written:
        problems.append(f"reducers read {read_records} records, committed maps wrote {written}")
    return problems, written


def each_task_counted_once(ctx: Context, result: dict | None) -> Check:
    """Every map and reduce task has exactly one committed attempt, and every committed reducer read
    each map task's committed output exactly once (no lost, no duplicate, no uncommitted output)."""
    if not result:
        return Check(None, "the run ended before its tasks")
    rounds, held = [], True
    with closing(lab_redis(ctx)) as client:
        for rnd in result["rounds"]:
            problems, written = _round_problems(client, rnd, result["reduces"])
            held = held and not problems
            attempts = [a for t in rnd["tasks"] for a in t["attempts"]]
            rounds.append(
                {
                    "round": rnd["label"] or rnd["index"],
                    "maps": sum(t["kind"] == "map" for t in rnd["tasks"]),
                    "reduces": sum(t["kind"] == "reduce" for t in rnd["tasks"]),
                    "attempts": len(attempts),
                    "rerun": sorted({t["task"] for t in rnd["tasks"] if len(t["attempts"]) > 1}),
                    "ignored": sum(a["state"] == "ignored" for a in attempts),
                    "records_shuffled": written,
                    "problems": problems[:10],
                }
            )
    problems = [p for r in rounds for p in r["problems"]]
    if problems:
        summary = problems[0] if len(problems) == 1 else f"{counted(len(problems), 'problem')}, first: {problems[0]}"
    else:
        attempts = sum(r["attempts"] for r in rounds)
        rerun = sum(len(r["rerun"]) for r in rounds)
        summary = f"every task committed once, from {counted(attempts, 'attempt')} ({rerun} run again)"
    return Check(held, {"summary": summary, "rounds": rounds})
