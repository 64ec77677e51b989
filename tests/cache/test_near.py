"""Near caches kept coherent by CLIENT TRACKING on the shared Redis: invalidations drop what a write
changed; a dropped invalidation connection loses them, and only a flush on reconnect keeps the
near cache from serving the old value."""

import pytest

from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine

SCENARIO = get_scenario("cache", "near-cache")


def run(params=None, seed=7, control=None):
    ctx, result, checks, events = run_engine(SCENARIO, lab_node_urls(), params, seed=seed, control=control)
    return ctx, result, {c["name"]: c for c in checks}, events


def near_events(events, op):
    return [e["data"] for e in events if (e.get("data") or {}).get("type") == "near" and e["data"]["op"] == op]


def commands(events, start):
    return [e["data"]["command"] for e in events if e["kind"] == "cmd" and e["data"]["command"].startswith(start)]


class FaultAt:
    """A fault button pressed at a given step boundary, as an instructor would press it."""

    def __init__(self, boundary, kind, target):
        self.boundary, self.press, self.seen = boundary, {"action": "fault", "kind": kind, "target": target}, 0

    def poll(self):
        self.seen += 1
        return [dict(self.press, by="charlie")] if self.seen == self.boundary else []

    def wait(self, timeout):
        return None


@pytest.mark.parametrize(
    "seed, params", [(7, {}), (1, {}), (2, {}), (7, {"keys": 1, "clients": 1, "steps": 1, "drop_at": 1})]
)
def test_it_passes_when_the_near_cache_is_flushed_after_its_invalidation_connection_comes_back(seed, params):
    ctx, result, checks, events = run(params, seed=seed)
    assert verdict_of(list(checks.values())) == "pass" == SCENARIO.expected, checks
    assert result["near_hits"] > 0, "the near caches must serve reads, or there is nothing to keep coherent"
    # The key written while c1 was deaf is read again fresh: the flush made c1 ask Redis.
    assert result["read_back"] == result["written"]
    assert near_events(events, "flushed")[0]["client"] == "c1"


@pytest.mark.parametrize(
    "seed, params",
    [
        (7, {}),
        (1, {}),
        (2, {}),
        # One client alone, dropped in the first step: the hot key is its only key.
        (7, {"keys": 1, "clients": 1, "steps": 1, "drop_at": 1}),
    ],
)
def test_clients_serve_stale_values_when_the_near_cache_is_kept_after_the_drop(seed, params):
    ctx, result, checks, events = run({"flush_on_reconnect": False, **params}, seed=seed)
    stale = checks["no_stale_read"]
    assert stale["held"] is False
    assert result["read_back"] < result["written"]
    # Every stale read was served from c1's near cache, for the key whose invalidation was lost
    # (and any other key written while c1 was deaf); Redis itself stayed right.
    assert {(s["client"], s["from"]) for s in stale["evidence"]["stale_reads"]} == {("c1", "near")}
    assert result["stale_key"] in {s["key"] for s in stale["evidence"]["stale_reads"]}
    assert checks["convergence"]["held"] is True
    assert checks["acknowledged_writes"]["held"] is True
    assert near_events(events, "reconnected")[0]["client"] == "c1"


def test_a_write_invalidates_the_entries_other_clients_hold_near():
    ctx, result, checks, events = run({"drop_at": 0, "read_ratio": 0.7, "steps": 8})
    assert verdict_of(list(checks.values())) == "pass", checks
    invalidated = near_events(events, "invalidated")
    assert invalidated, "writes of keys held near must reach the clients that hold them"
    # Each invalidation dropped a key some client had been served near, and that key was written.
    written = {op["value"]["key"] for op in ctx.history.completed("write") if op["type"] == "ok"}
    assert {i["key"] for i in invalidated} & written


def test_the_fault_button_drops_the_clients_invalidation_connection_and_it_reconnects():
    ctx, result, checks, events = run({"drop_at": 0}, control=FaultAt(2, "drop-invalidations", "c2"))
    faults = [e for e in events if e["kind"] == "fault"]
    assert [(f["data"]["kind"], f["to"], f["actor"]) for f in faults] == [("drop-invalidations", "c2", "charlie")]
    dropped = faults[0]["data"]["connection"]
    assert commands(events, "CLIENT KILL ID") == [f"CLIENT KILL ID {dropped}"]
    # c2 turned tracking on again, towards its new invalidation connection.
    redirects = [c for c in commands(events, "CLIENT TRACKING on REDIRECT")]
    assert len(redirects) == 3 + 1 and redirects[-1] != f"CLIENT TRACKING on REDIRECT {dropped}"
    assert near_events(events, "flushed")[0]["client"] == "c2"
    assert verdict_of(list(checks.values())) == "pass", checks


def test_a_drop_after_the_last_step_and_an_unknown_client_are_refused():
    clean, errors = SCENARIO.validate({"drop_at": 11, "steps": 10})
    assert errors == {"drop_at": ["must be at most steps (10), or 0 for no drop"]}
    ctx, result, checks, events = run({"drop_at": 0, "steps": 2}, control=FaultAt(1, "drop-invalidations", "c9"))
    assert any("no client c9" in e["label"] for e in events if e["kind"] == "log")
