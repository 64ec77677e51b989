"""Each MapReduce checker fed real broken data and seen to fail: a job run on the real workers and
the real lab Redis, with a split that drops or repeats a line, or with its committed output in
Redis changed afterwards, as a faulty coordinator or reducer would have left it."""

import dataclasses
import json

import pytest

from apps.mapreduce.engine import corpus
from apps.mapreduce.engine.jobs import WORD, make_job
from apps.mapreduce.engine.worker import Keys
from apps.runs.registry import get_scenario
from tests.conftest import lab_node_urls
from tests.engine import run_engine

SMALL = {"size_limit": 200_000, "maps": 3, "reduces": 2}


def run_with(tamper=None, **params):
    """A word count whose committed data `tamper(lab_redis, result)` changes before the checkers
    read it; the checks by name."""
    scenario = get_scenario("mapreduce", "wordcount")
    engine = scenario.engine

    def run(ctx):
        result = engine(ctx)
        if tamper is not None:
            tamper(ctx.nodes.redis(), result)
        return result

    broken = dataclasses.replace(scenario, engine=run)
    _, _, checks, _ = run_engine(broken, lab_node_urls(), params={**SMALL, **params}, seed=3)
    return {c["name"]: c for c in checks}


def split_changing_a_line(change):
    """corpus.split, but the second split's first line with a word in it is changed by
    `change(line) -> lines` (its record count kept in step, so the split looks whole)."""
    split = corpus.split

    def changed(docs, maps):
        splits = split(docs, maps)
        chunk = splits[1][0]
        lines = chunk[2].splitlines(keepends=True)
        i = next(i for i, line in enumerate(lines) if WORD.search(line))
        new = change(lines[i])
        lines[i : i + 1] = new
        chunk[2] = "".join(lines)
        chunk[3] += len(new) - 1
        return splits

    return changed


def committed(lab, result, r):
    keys = Keys(result["rounds"][0]["base"])
    return keys, int(lab.get(keys.commit(f"r{r}")))


def test_the_output_checker_passes_a_correct_job(mapreduce_workers):
    checks = run_with()
    assert checks["output_matches_reference"]["held"] is True, checks["output_matches_reference"]
    assert checks["each_task_counted_once"]["held"] is True, checks["each_task_counted_once"]


@pytest.mark.parametrize("change", [lambda line: [], lambda line: [line, line]], ids=["dropped", "repeated"])
def test_a_split_that_drops_or_repeats_a_line_fails_the_output_check(mapreduce_workers, monkeypatch, change):
    monkeypatch.setattr(corpus, "split", split_changing_a_line(change))
    checks = run_with()
    check = checks["output_matches_reference"]
    assert check["held"] is False
    assert check["evidence"]["rounds"][0]["first_differences"]
    # Every task was run and counted once: only the reference, from the documents, tells.
    assert checks["each_task_counted_once"]["held"] is True


def test_a_wrong_value_in_the_output_in_redis_fails_the_output_check(mapreduce_workers):
    def wrong_value(lab, result):
        keys, attempt = committed(lab, result, 0)
        pairs = json.loads(lab.get(keys.reduce_output(0, attempt)))
        pairs[0][1] += 1
        lab.set(keys.reduce_output(0, attempt), json.dumps(pairs))
        wrong_value.key = pairs[0][0]

    check = run_with(wrong_value)["output_matches_reference"]
    assert check["held"] is False
    (difference,) = check["evidence"]["rounds"][0]["first_differences"]
    assert difference["key"] == wrong_value.key and difference["output"] == difference["reference"] + 1
    assert check["evidence"]["summary"].startswith(
        f"the output differs from the reference in 1 of 1 round; first, key {wrong_value.key!r}"
    )


def test_a_reducer_that_counted_a_map_output_twice_fails_both_checks(mapreduce_workers):
    def count_m0_twice(lab, result):
        # What a reducer that read m0's committed output twice would have committed.
        keys, attempt = committed(lab, result, 0)
        read = json.loads(lab.get(keys.reduce_inputs(0, attempt)))
        read.append(next(entry for entry in read if entry[0] == "m0"))
        inputs = [json.loads(lab.get(keys.map_output(task, n, 0))) for task, n, _, _ in read]
        reduced = make_job("wordcount").reduce_partition(inputs)
        lab.set(keys.reduce_output(0, attempt), json.dumps(sorted(reduced.items())))
        lab.set(keys.reduce_inputs(0, attempt), json.dumps(read))

    checks = run_with(count_m0_twice)
    assert checks["output_matches_reference"]["held"] is False
    counted = checks["each_task_counted_once"]
    assert counted["held"] is False
    assert "r0 read m0 2 times" in counted["evidence"]["rounds"][0]["problems"]


def test_a_lost_commit_key_fails_the_task_check(mapreduce_workers):
    def drop_commit(lab, result):
        lab.delete(Keys(result["rounds"][0]["base"]).commit("m1"))

    counted = run_with(drop_commit)["each_task_counted_once"]
    assert counted["held"] is False
    assert "m1 has no committed attempt" in counted["evidence"]["rounds"][0]["problems"]
    assert "m1 has no committed attempt" in counted["evidence"]["summary"]
