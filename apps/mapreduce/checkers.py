"""Invariants of the MapReduce lab, read from the real keys in the lab Redis (the commit keys, the
committed outputs and what each committed reducer read) and the workers' own timestamps."""

import json
from collections import Counter

from apps.runs.registry import Check

from .engine.coordinator import read_committed_output
from .engine.worker import Keys

MISSING = "(missing)"
SENT_TOGETHER_MS = 50.0
START_SKEW_MS = 100.0
# An attempt sent to a worker this run saw idle that started this much later, while the worker
# process was still finishing an earlier attempt (another run's: workers are shared), proves
# nothing about this run's parallelism.
BUSY_ELSEWHERE_MS = 300.0


def _short(value):
    text = json.dumps(value, default=str)
    return value if len(text) <= 200 else text[:200] + "…"


def output_matches_reference(ctx, result):
    """The committed output equals the sequential reference computed in the same run."""
    if not result:
        return Check(None, "the run ended before its output")
    reference = json.loads(json.dumps(result["reference"]))
    redis = ctx.nodes.redis()
    rounds, held = [], True
    for rnd in result["rounds"]:
        output = read_committed_output(redis, Keys(rnd["base"]), result["reduces"])
        differing = []
        if output != reference:
            held = False
            for key in sorted(set(output) | set(reference)):
                if output.get(key, MISSING) != reference.get(key, MISSING):
                    differing.append(
                        {
                            "key": key,
                            "output": _short(output.get(key, MISSING)),
                            "reference": _short(reference.get(key, MISSING)),
                        }
                    )
                    if len(differing) == 5:
                        break
        rounds.append(
            {
                "round": rnd["label"] or rnd["index"],
                "keys": len(output),
                "reference_keys": len(reference),
                "first_differences": differing,
            }
        )
    return Check(held, {"job": result["job"], "rounds": rounds})


def each_task_counted_once(ctx, result):
    """Every map and reduce task has exactly one committed attempt, and every committed reducer read
    each map task's committed output exactly once (no lost, no duplicate, no uncommitted output)."""
    if not result:
        return Check(None, "the run ended before its tasks")
    redis = ctx.nodes.redis()
    rounds, held = [], True
    for rnd in result["rounds"]:
        keys = Keys(rnd["base"])
        problems = []
        commits = {}
        for t in rnd["tasks"]:
            stored = redis.get(keys.commit(t["task"]))
            commits[t["task"]] = int(stored) if stored is not None else None
            if commits[t["task"]] is None:
                problems.append(f"{t['task']} has no committed attempt")
            elif commits[t["task"]] != t["committed"]:
                problems.append(
                    f"{t['task']}: attempt {commits[t['task']]} is committed, the coordinator used {t['committed']}"
                )
        maps = {t["task"]: t for t in rnd["tasks"] if t["kind"] == "map"}
        reduces = [t for t in rnd["tasks"] if t["kind"] == "reduce"]
        read_records = 0
        for t in reduces:
            attempt = commits.get(t["task"])
            if attempt is None:
                continue
            raw = redis.get(keys.reduce_inputs(int(t["task"][1:]), attempt))
            if raw is None:
                problems.append(f"{t['task']}: the committed attempt recorded no inputs")
                continue
            read = json.loads(raw)
            times = Counter(task for task, _, _, _ in read)
            for m in maps:
                if times[m] != 1:
                    problems.append(f"{t['task']} read {m} {times[m]} times")
            for task, used, records, _ in read:
                if task in commits and used != commits[task]:
                    problems.append(
                        f"{t['task']} read attempt {used} of {task}, not its committed attempt {commits[task]}"
                    )
                read_records += records
        written = sum(
            a["records_out"] for t in maps.values() for a in t["attempts"] if a["attempt"] == commits.get(t["task"])
        )
        if read_records != written:
            problems.append(f"reducers read {read_records} records, committed maps wrote {written}")
        held = held and not problems
        attempts = [a for t in rnd["tasks"] for a in t["attempts"]]
        rounds.append(
            {
                "round": rnd["label"] or rnd["index"],
                "maps": len(maps),
                "reduces": len(reduces),
                "attempts": len(attempts),
                "rerun": sorted({t["task"] for t in rnd["tasks"] if len(t["attempts"]) > 1}),
                "ignored": sum(a["state"] == "ignored" for a in attempts),
                "records_shuffled": written,
                "problems": problems[:10],
            }
        )
    return Check(held, {"rounds": rounds})


def _overlap(intervals):
    """Two intervals on different workers that overlap, or None."""
    intervals = sorted(intervals)
    for i, (s1, e1, w1, t1) in enumerate(intervals):
        for s2, e2, w2, t2 in intervals[i + 1 :]:
            if s2 >= e1:
                break
            if w1 != w2:
                return {"a": [t1, w1, s1, e1], "b": [t2, w2, s2, e2], "overlap_ms": round(min(e1, e2) - s2, 2)}
    return None


def _sent_together(tasks, within_ms=SENT_TOGETHER_MS):
    """Two attempts sent to different workers within a few ms of each other that also started
    within START_SKEW_MS of each other (so the first lasted less than that), or None. Two workers
    that really ran one task at a time would start the second only when the first was over."""
    sent = sorted(
        (a["sent_ms"], a["worker"], f"{t['task']}#{a['attempt']}", a["start_ms"], a["end_ms"])
        for t in tasks
        for a in t["attempts"]
        if a.get("sent_ms") is not None and a["start_ms"] is not None
    )
    for i, (s1, w1, t1, b1, e1) in enumerate(sent):
        for s2, w2, t2, b2, e2 in sent[i + 1 :]:
            if s2 - s1 > within_ms:
                break
            if w1 != w2 and abs(b2 - b1) <= START_SKEW_MS:
                return {"a": [t1, w1, s1, b1, e1], "b": [t2, w2, s2, b2, e2], "start_skew_ms": round(abs(b2 - b1), 2)}
    return None


def _busy_elsewhere(tasks, all_tasks, late_ms=BUSY_ELSEWHERE_MS):
    """The attempts that started more than `late_ms` after they were sent because their worker was
    not free: its process was still running an earlier attempt (by the worker's own account), or
    it was a new process (the one this run used before had been killed, e.g. by another run)."""
    pids = {}  # worker -> the pids of its processes this run saw, in order of start
    for a in sorted(
        (a for t in all_tasks for a in t["attempts"] if a["start_ms"] is not None), key=lambda a: a["start_ms"]
    ):
        pids.setdefault(a["worker"], []).append((a["start_ms"], a.get("pid")))

    def new_process(a):
        before = [pid for start, pid in pids.get(a["worker"], []) if start < a["start_ms"]]
        return bool(before) and None not in (before[-1], a.get("pid")) and before[-1] != a.get("pid")

    late = []
    for t in tasks:
        for a in t["attempts"]:
            if a.get("sent_ms") is None or a["start_ms"] is None or a["start_ms"] - a["sent_ms"] <= late_ms:
                continue
            busy = (a.get("previous_end_ms") or float("-inf")) > a["sent_ms"]
            if busy or new_process(a):
                late.append(
                    {
                        "attempt": f"{t['task']}#{a['attempt']}",
                        "worker": a["worker"],
                        "waited_ms": round(a["start_ms"] - a["sent_ms"], 2),
                        "why": "still running an earlier attempt" if busy else "a new worker process",
                    }
                )
    return late


def workers_ran_in_parallel(ctx, result):
    """With two workers or more, map tasks ran at the same time on different workers, and so did
    reduce tasks: intervals from the workers' own clocks."""
    if not result:
        return Check(None, "the run ended before its tasks")
    rounds, verdicts = [], []
    for rnd in result["rounds"]:
        used = {a["worker"] for t in rnd["tasks"] for a in t["attempts"] if a["start_ms"] is not None}
        if len(used) < 2:
            rounds.append(
                {
                    "round": rnd["label"] or rnd["index"],
                    "reason": f"only one worker was used ({', '.join(sorted(used))})",
                }
            )
            continue
        entry = {"round": rnd["label"] or rnd["index"], "workers": sorted(used)}
        for kind in ("map", "reduce"):
            tasks = [t for t in rnd["tasks"] if t["kind"] == kind]
            if len(tasks) < 2:
                entry[kind] = f"one {kind} task only: nothing to run in parallel"
                continue
            intervals = [
                (a["start_ms"], a["end_ms"], a["worker"], f"{t['task']}#{a['attempt']}")
                for t in tasks
                for a in t["attempts"]
                if a["start_ms"] is not None and a["end_ms"] is not None
            ]
            if len({w for _, _, w, _ in intervals}) < 2:
                # e.g. every reduce went to the fast worker while the other finished a cancelled copy
                entry[kind] = {"reason": f"every {kind} task ran on one worker", "intervals": intervals[:12]}
                continue
            found = _overlap(intervals)
            if found is None:
                together = _sent_together(tasks)
                if together:
                    # Both were handed out at once, and the first was over before the other worker
                    # had started: these tasks are shorter than the workers' start-up skew, so their
                    # timing says nothing either way.
                    entry[kind] = {"reason": f"{kind} tasks too short to tell", "sent_together": together}
                    continue
                late = _busy_elsewhere(tasks, rnd["tasks"])
                if late:
                    # A worker this run sent a task to was still busy elsewhere (workers are shared
                    # between runs): the tasks did not overlap, but not for lack of parallelism here.
                    entry[kind] = {
                        "reason": f"a worker was not free when {kind} tasks were sent",
                        "late": late,
                    }
                    continue
            entry[kind] = found or {"overlap": None, "intervals": intervals[:12]}
            verdicts.append(found is not None)
        rounds.append(entry)
    if not verdicts:
        return Check(None, {"reason": "only one worker was used, or one task per phase", "rounds": rounds})
    return Check(all(verdicts), {"rounds": rounds})
