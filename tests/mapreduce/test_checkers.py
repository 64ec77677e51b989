"""The parallelism checker on task timings like those a real run records (coordinator's sent_ms,
workers' own start/end), including workers shared with another run."""

from apps.mapreduce.checkers import workers_ran_in_parallel


def attempt(worker, sent, start, end, previous_end=None, pid=None):
    return {
        "worker": worker,
        "pid": pid or {"w1": 101, "w2": 102}[worker],
        "attempt": 1,
        "sent_ms": sent,
        "start_ms": start,
        "end_ms": end,
        "previous_end_ms": previous_end,
    }


def job(reduces):
    maps = [
        {"task": "m0", "kind": "map", "attempts": [attempt("w1", 2360, 2365, 2459)]},
        {"task": "m1", "kind": "map", "attempts": [attempt("w2", 2361, 2391, 2455)]},
    ]
    tasks = maps + [{"task": f"r{i}", "kind": "reduce", "attempts": [a]} for i, a in enumerate(reduces)]
    return {"rounds": [{"label": None, "index": 1, "tasks": tasks}]}


def test_reduces_that_did_not_overlap_because_a_shared_worker_was_busy_elsewhere_prove_nothing():
    # w2 was running another run's task until 6,900 ms: it started r1 1.8 s after it was sent.
    busy = attempt("w2", 5101, 6904, 6943, previous_end=6900)
    check = workers_ran_in_parallel(None, job([attempt("w1", 5100, 5105, 5127), busy]))
    assert check.held is True  # the maps did overlap
    reduce = check.evidence["rounds"][0]["reduce"]
    assert reduce["late"] == [
        {"attempt": "r1#1", "worker": "w2", "waited_ms": 1803, "why": "still running an earlier attempt"}
    ]


def test_a_worker_process_replaced_in_between_is_not_a_lack_of_parallelism():
    # Another run's attempt SIGKILLed w2's process; its new process took r1 0.7 s after it was sent.
    restarted = attempt("w2", 5144, 5845, 5872, pid=202)
    check = workers_ran_in_parallel(None, job([attempt("w1", 5144, 5148, 5169), restarted]))
    assert check.held is True
    assert check.evidence["rounds"][0]["reduce"]["late"][0]["why"] == "a new worker process"


def test_reduces_sent_to_idle_workers_that_ran_one_after_the_other_break_the_invariant():
    # w2 had been idle since 4,000 ms, yet started only when w1 was done: no parallelism.
    serial = attempt("w2", 5101, 5405, 5700, previous_end=4000)
    check = workers_ran_in_parallel(None, job([attempt("w1", 5100, 5105, 5400), serial]))
    assert check.held is False
