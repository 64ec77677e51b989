"""The cache races on the real MariaDB and Redis, scheduled so every run shows them: the stale set
serves the old version until the TTL, updating the cache diverges where deleting converges, the
double delete clears the old value only after the reader's fill, and leases refuse the stale set."""

import contextlib
import random

import pytest
import redis

from apps.cache.engine import races
from apps.cache.engine.leases import LeaseClient, Leases
from apps.cache.engine.store import Store, decode, encode
from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine

SEEDS = [7, 1, 2]


def run(name, params=None, seed=7):
    scenario = get_scenario("cache", name)
    ctx, result, checks, events = run_engine(scenario, lab_node_urls(), params, seed=seed)
    assert verdict_of(checks) == scenario.expected, checks
    return ctx, result, {c["name"]: c for c in checks}, events


def held(checks):
    return {name: c["held"] for name, c in checks.items()}


def reads(ctx):
    return [op for op in ctx.history.completed("read") if op["type"] == "ok"]


def states(events, kind):
    return [e["data"] for e in events if e["kind"] == "state" and e["data"]["type"] == kind]


@pytest.mark.parametrize("seed", SEEDS)
def test_it_serves_the_readers_fill_of_v1_after_the_writers_delete_until_the_ttl(seed):
    ctx, result, checks, events = run("stale-set-race", seed=seed)
    assert held(checks) == {"no_stale_read": False, "convergence": True, "acknowledged_writes": True}
    evidence = checks["no_stale_read"]["evidence"]
    assert sorted(evidence["windows_s"]) == result["keys"] == sorted(evidence["windows_ms"])
    for stale in evidence["stale_reads"]:
        # The other readers were served the reader's v1 from the cache after the writer's v2.
        assert stale["client"].startswith("c") and stale["from"] == "cache"
        assert (stale["served"], stale["newer"]["version"], stale["newer"]["by"]) == (1, 2, "writer")
    # Once the TTL ran out, every reader was served v2: the last read of each key by each client.
    last = {(op["process"], op["value"]["key"]): op["value"]["version"] for op in reads(ctx)}
    assert {v for (client, _), v in last.items() if client != "reader"} == {2}
    # The race as the page draws it: the fill of v1 comes after the delete.
    entries = [(e["key"], e["op"], e["version"]) for e in states(events, "entry")]
    for key in result["keys"]:
        assert entries.index((key, "delete", None)) < entries.index((key, "set", 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_updating_the_cache_leaves_writer_a_older_version_where_deleting_converges(seed):
    ctx, result, checks, _ = run("update-vs-delete", {"keys": 4, "steps": 2}, seed=seed)
    assert held(checks) == {
        "update_side_no_stale_read": False,
        "update_side_convergence": False,
        "delete_side_no_stale_read": True,
        "delete_side_convergence": True,
        "acknowledged_writes": True,
    }
    sides = races.sides(4)
    differing = checks["update_side_convergence"]["evidence"]["differing"]
    # Two rounds of two writes each: the rows are at v5, the update side's entries at A's v4.
    assert [(d["key"], d["cached"], d["row"]) for d in differing] == [(k, 4, 5) for k in sides["update"]]
    assert checks["delete_side_convergence"]["evidence"]["cached"] == len(sides["delete"])
    stale = checks["update_side_no_stale_read"]["evidence"]["stale_reads"]
    assert {s["key"] for s in stale} == set(sides["update"])
    assert {s["newer"]["by"] for s in stale} == {"update-b"}


def test_the_double_delete_clears_the_old_value_only_when_its_delay_exceeds_the_readers_time():
    ctx, result, checks, events = run("double-delete", {"reader_ms": 100, "ttl_ms": 1000})
    assert held(checks) == dict.fromkeys(checks, True)
    sweep = {s["multiple"]: s for s in result["sweep"]}
    assert {m: s["cached_after_second_delete_ms"] for m, s in sweep.items()} == {
        0.0: 1000,
        0.25: 1000,
        0.5: 1000,
        0.75: 1000,
        1.5: 0,
        2.0: 0,
    }
    judged = {s["key"]: s for s in checks["no_stale_read_after_second_delete"]["evidence"]["sweep"]}
    for multiple, s in sweep.items():
        # Below the reader's time the probes after the second delete were served the old value.
        assert (judged[s["key"]]["stale_reads"] > 0) == (multiple < 1)
        assert judged[s["key"]]["above_read_plus_set"] == (multiple > 1)
    chart = [(e["data"]["x"], e["data"]["y"]) for e in events if e["kind"] == "metric"]
    assert chart == [(m * 100, sweep[m]["cached_after_second_delete_ms"]) for m in races.DELAY_MULTIPLES]


@pytest.mark.parametrize("seed", SEEDS)
def test_leases_refuse_the_stale_set_and_hand_one_new_token_while_the_others_wait(seed):
    ctx, result, checks, events = run("leases", {"keys": 2, "clients": 4, "steps": 2}, seed=seed)
    assert held(checks) == dict.fromkeys(checks, True)
    assert result["refused"] == 2
    leases = [(e["key"], e["client"], e["state"]) for e in states(events, "lease")]
    for key in result["keys"]:
        # One token at a time: the reader's, invalidated by the write and refused; then c1's, used.
        assert [(client, state) for k, client, state in leases if k == key] == [
            ("reader", "granted"),
            ("writer", "invalidated"),
            ("reader", "refused"),
            ("c1", "granted"),
            ("c1", "used"),
        ]
    waited = {op["process"] for op in reads(ctx) if op["value"].get("waits", 0) > 0}
    assert waited == {"c2", "c3", "c4"}
    # No reader but the raced one was served v1, and it only by its own read of the row.
    assert {op["value"]["version"] for op in reads(ctx) if op["process"] != "reader"} == {2}


@contextlib.contextmanager
def lease_run(lease_ms, keys):
    """A leases run's context on the shared nodes, with `keys` rows and its leases."""
    params, _ = get_scenario("cache", "leases").validate({"lease_ms": lease_ms})
    run_id = random.randrange(10**8, 10**9)
    recorder = Recorder(run_id, [ListSink()])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params=params, seed=7, recorder=recorder, nodes=nodes)
    try:
        store = Store(nodes)
        store.create(keys, random.Random(7))
        yield ctx, store, Leases(ctx, store, lease_ms=lease_ms)
    finally:
        nodes.cleanup()
        recorder.close()


@pytest.fixture
def lease_table():
    with lease_run(60_000, 2) as made:
        yield made


def test_a_lease_is_one_token_per_key_and_a_delete_voids_it(lease_table):
    ctx, store, leases = lease_table
    alice, bob = leases.get("alice", "item00001"), leases.get("bob", "item00001")
    assert alice.kind == "token" and bob.kind == "wait" and bob.wait_ms > 0
    assert leases.get("bob", "item00002").kind == "token"  # another key, another lease
    assert leases.delete("writer", "item00001") == alice.token
    assert leases.get("bob", "item00001").kind == "wait"  # until alice comes back, bob still waits
    assert leases.set("alice", "item00001", alice.token, 1, "old", 1000) is False
    assert store.redis().get(store.cache_key("item00001")) is None
    assert leases.get("bob", "item00001").kind == "token"  # alice's refusal ended her lease


def test_a_set_with_the_current_token_fills_and_ends_the_lease(lease_table):
    ctx, store, leases = lease_table
    got = leases.get("alice", "item00001")
    assert leases.set("alice", "item00001", got.token + 1, 1, "forged", 1000) is False
    assert leases.set("alice", "item00001", got.token, 1, "fresh", 1000) is True
    client = redis.Redis.from_url(ctx.nodes.redis_address(), decode_responses=True)
    try:
        assert decode(client.get(store.cache_key("item00001"))) == (1, "fresh")
        hit = leases.get("bob", "item00001")
        assert (hit.kind, hit.entry) == ("hit", encode(1, "fresh"))
    finally:
        client.close()


def test_a_lease_reader_waits_out_a_lease_nobody_uses_and_then_fills():
    with lease_run(100, 1) as (ctx, store, leases):
        assert leases.get("gone", "item00001").kind == "token"  # a holder that never comes back
        reader = LeaseClient(ctx, "c1", store, leases, ttl_ms=1000, retry_ms=20)
        assert reader.read("item00001") == 1
        assert reader.waits > 0 and reader.misses == 1
        assert decode(store.redis().get(store.cache_key("item00001")))[0] == 1
        reader.close()
