"""Every locks scenario on the shared nodes, run once each against the real MariaDB and Redis, its
verdict and evidence read back from the storage by the checkers."""

import pytest

from apps.locks import checkers
from apps.locks.engine.storage import Section
from apps.runs.context import RunStopped
from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine
from tests.locks.commands import assert_one_cmd_shape


def run(name, params=None, **kwargs):
    ctx, result, checks, events = run_engine(get_scenario("locks", name), lab_node_urls(), params, **kwargs)
    return result, {c["name"]: c for c in checks}, events


def states(events, type_):
    return [e["data"] for e in events if e["kind"] == "state" and e["data"].get("type") == type_]


def metrics(events, name):
    return [e["data"] for e in events if e["kind"] == "metric" and e["data"]["name"] == name]


def fold_sections(events):
    """The critical sections as the page folds them from `cs` events: the last event of each id."""
    sections = {}
    for data in states(events, "cs"):
        fields = {k: data[k] for k in ("id", "client", "row", "token", "start_ms", "end_ms", "accepted", "mode")}
        sections[data["id"]] = Section(**fields)
    return list(sections.values())


def test_lost_update_loses_increments_and_its_sections_overlap():
    result, checks, events = run("lost-update", {"clients": 3, "operations": 2})
    assert verdict_of(list(checks.values())) == "fail"
    lost = checks["no_lost_update"]["evidence"]
    assert lost["acknowledged"] == 6 and lost["lost"] >= 2  # the first round: all read 0, all write 1
    assert lost["summary"].startswith(f"{lost['lost']} acknowledged increments lost: the counter is {lost['final']}")
    pairs = checks["mutual_exclusion"]["evidence"]["pairs"]
    assert pairs and all(p["first"]["client"] != p["second"]["client"] for p in pairs)
    assert all(p["second"]["start_ms"] < p["first"]["end_ms"] for p in pairs)
    # The events a viewer folds show the same overlaps the checker read from the storage's rows.
    folded = checkers.overlaps(fold_sections(events))
    assert len(folded) == checks["mutual_exclusion"]["evidence"]["overlapping"]
    assert {(a.id, b.id) for a, b in folded} >= {(p["first"]["id"], p["second"]["id"]) for p in pairs}
    assert len(fold_sections(events)) == checks["mutual_exclusion"]["evidence"]["sections"] == 6


def test_optimistic_counts_its_conflicts_and_loses_nothing():
    result, checks, events = run("optimistic", {"clients": 3, "operations": 6, "think_ms": 3})
    assert verdict_of(list(checks.values())) == "pass"
    assert checks["no_lost_update"]["evidence"]["final"] == 18
    assert result["conflicts"] > 0 and result["conflicts"] == result["retries"]
    assert sum(m["value"] for m in metrics(events, "acquired") if m["value"] == 6) == 3 * 6
    updates = [e["data"]["command"] for e in events if e["kind"] == "cmd" and "AND version" in e["data"]["command"]]
    assert len(updates) == 18 + result["conflicts"]


def test_pessimistic_serialises_the_clients_on_the_row_lock():
    result, checks, events = run("pessimistic", {"clients": 3, "operations": 4, "think_ms": 5})
    assert verdict_of(list(checks.values())) == "pass"
    assert checks["no_lost_update"]["evidence"]["final"] == 12
    assert result["lock_waits"] > 0
    waits = [w for s in states(events, "innodb_waits") for w in s["waits"]]
    assert waits and {w["table"] for w in waits} == {"counter"}
    assert all(w["waiting"] != w["blocking"] for w in waits)
    commands = [e["data"]["command"] for e in events if e["kind"] == "cmd"]
    assert "BEGIN" in commands and any(c.endswith("FOR UPDATE") for c in commands)


def test_for_update_under_autocommit_protects_nothing():
    result, checks, events = run("pessimistic", {"clients": 3, "operations": 3, "think_ms": 20, "transaction": False})
    assert checks["mutual_exclusion"]["held"] is False
    assert "BEGIN" not in [e["data"]["command"] for e in events if e["kind"] == "cmd"]


def test_a_deadlock_is_broken_by_innodb_and_the_victim_retries():
    result, checks, events = run("deadlock", {"operations": 2})
    assert verdict_of(list(checks.values())) == "pass"
    cycles = states(events, "wait_for")
    assert len(cycles) == 2 and len(result["deadlocks"]) == 2
    for cycle in cycles:
        victim, other = cycle["victim"], {"c1": "c2", "c2": "c1"}[cycle["victim"]]
        assert cycle["errno"] == 1213
        assert sorted(cycle["edges"]) == sorted([[victim, other], [other, victim]])
    assert checks["no_lost_update"]["evidence"]["by_row"] == {"1": 4, "2": 4}
    failed = [e["data"] for e in assert_one_cmd_shape(events) if not e["data"]["ok"]]
    assert any(d["error"].startswith("1213: Deadlock found") and d["result"] is None for d in failed)


def test_the_sweep_charts_both_schemes_against_contention():
    result, checks, events = run("optimistic-vs-pessimistic", {"clients": 2, "operations": 5, "rows": 2, "hot_rows": 2})
    assert verdict_of(list(checks.values())) == "pass"
    points = metrics(events, "throughput (ops/s)")
    assert {(p["series"], p["x"]) for p in points} == {
        (f"{scheme}, {hot}", n)
        for scheme in ("optimistic", "pessimistic")
        for hot in ("1 hot row", "2 hot rows")
        for n in (1, 2)
    }
    assert all(p["y"] > 0 for p in points)
    assert len(metrics(events, "retries or lock waits per op")) == len(metrics(events, "latency (ms)")) == 8
    assert checks["no_lost_update"]["evidence"]["final"] == sum(p["clients"] * 5 for p in result["points"])


def test_a_redis_lease_keeps_the_clients_apart():
    result, checks, events = run("redis-lease", {"clients": 3, "operations": 3})
    assert verdict_of(list(checks.values())) == "pass"
    assert result["acquired"] == 9
    leases = states(events, "lease")
    assert {s["holder"] for s in leases} >= {"c1", "c2", "c3", None}
    held = [s for s in leases if s["holder"] and s["ttl_ms"] == 2000]
    assert len({s["token"] for s in held}) == 9
    commands = [e["data"]["command"] for e in assert_one_cmd_shape(events) if e["to"] == "redis"]
    assert any(" NX PX 2000" in c for c in commands) and any("compare-and-delete" in c for c in commands)


@pytest.mark.parametrize(("name", "verdict"), [("redis-lease-pause", "fail"), ("redis-lease-fencing", "pass")])
def test_a_holder_paused_past_its_ttl(name, verdict):
    result, checks, events = run(name, {"ttl_ms": 200, "pause_ms": 500})
    assert verdict_of(list(checks.values())) == verdict
    c1, c2 = result["writes"]["c1"], result["writes"]["c2"]
    assert c1["wrote"] == c2["wrote"] == 1  # c1 computed its value before the pause
    if name == "redis-lease-pause":
        pair = checks["mutual_exclusion"]["evidence"]["pairs"]
        assert [(p["first"]["client"], p["second"]["client"]) for p in pair] == [("c1", "c2")]
        assert checks["no_lost_update"]["evidence"]["lost"] == 1
    else:
        assert (c1["token"], c2["token"], c1["accepted"], c2["accepted"]) == (1, 2, False, True)
        assert checks["fencing_monotonic"]["evidence"]["rejected"] == [{"client": "c1", "token": 1, "last": 2}]
        assert [s["accepted"] for s in states(events, "cs") if s["end_ms"] is not None and s["client"] == "c1"] == [
            False
        ]
    paused = [s for s in states(events, "client") if s["state"] == "paused"]
    assert paused and paused[0]["client"] == "c1"


class PauseThenResume:
    """An instructor pauses a client at once and resumes it a few step boundaries later."""

    def __init__(self, target, after=5):
        self.target, self.after, self.polls = target, after, 0

    def poll(self):
        self.polls += 1
        if self.polls == 1:
            return [{"action": "fault", "kind": "pause", "target": self.target}]
        if self.polls == 1 + self.after:
            return [{"action": "fault", "kind": "resume", "target": self.target}]
        return []

    def wait(self, timeout):
        return None


def test_an_instructor_pauses_a_client_where_it_is_and_resumes_it():
    result, checks, events = run("redis-lease", {"clients": 2, "operations": 2}, control=PauseThenResume("c2"))
    faults = [(e["data"]["kind"], e["to"]) for e in events if e["kind"] == "fault"]
    assert faults == [("pause", "c2"), ("resume", "c2")]
    c2 = [s["state"] for s in states(events, "client") if s["client"] == "c2"]
    assert c2.count("paused") == 1 and c2[-1] == "done"
    assert result["acquired"] == 4


class StopAfter:
    def __init__(self, polls):
        self.polls, self.left = 0, polls

    def poll(self):
        self.polls += 1
        return [{"action": "stop", "by": "charlie"}] if self.polls == self.left else []

    def wait(self, timeout):
        return None


def test_a_stopped_run_ends_every_client_waiting_or_holding():
    with pytest.raises(RunStopped, match="stopped by charlie"):
        run("redis-lease", {"clients": 4, "operations": 50, "think_ms": 20}, control=StopAfter(6))
