"""Sharding over dedicated Redis nodes: 3, then a fourth joins, then it leaves, and whatever the
add / remove shard buttons change besides. The shares each placement moves, where the entries end
up, a node killed under the clients, and the checkers fed real broken data."""

import contextlib
import os
import random

import pytest
import redis

from apps.cache import checkers_scale
from apps.cache.engine.sharding import MEMBERSHIP, SCHEMES, Slots, placements
from apps.cache.engine.store import Store, encode
from apps.cluster.runnodes import DedicatedNodes
from apps.runs.context import RunContext
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario, verdict_of
from tests.cache.test_write import FaultAt
from tests.engine import run_engine

SCENARIO = get_scenario("cache", "sharding")
KEYS = [f"item{i:05d}" for i in range(1, 201)]


def run_dedicated(supervisor, params=None, seed=7, control=None):
    def start_cluster(run_id, emit):
        return DedicatedNodes.start(run_id, supervisor, SCENARIO.cluster, emit=emit, owner_pid=os.getpid())

    ctx, result, checks, events = run_engine(SCENARIO, params=params, seed=seed, nodes=start_cluster, control=control)
    return ctx, result, {c["name"]: c for c in checks}, events


@contextlib.contextmanager
def finished_run(supervisor, params=None, seed=7):
    """A run whose nodes are still up after its engine returned, for a test to break its data."""
    run_id = random.randrange(10**8, 10**9)
    clean, errors = SCENARIO.validate(params or {})
    assert not errors, errors
    recorder = Recorder(run_id, [ListSink()])
    nodes = DedicatedNodes.start(run_id, supervisor, SCENARIO.cluster, emit=recorder.emit, owner_pid=os.getpid())
    try:
        ctx = RunContext(run_id=run_id, params=clean, seed=seed, recorder=recorder, nodes=nodes)
        result = SCENARIO.engine(ctx)
        yield ctx, result, Store(nodes, "redis1")
    finally:
        nodes.cleanup()
        recorder.close()


def redis_of(ctx, node):
    return redis.Redis.from_url(ctx.nodes.redis_address(node), decode_responses=True)


@pytest.mark.parametrize("seed", [7, 1, 2])
def test_it_passes_with_each_placement_moving_its_share_and_no_wrong_read(supervisor, seed):
    ctx, result, checks, events = run_dedicated(supervisor, seed=seed)
    assert verdict_of(list(checks.values())) == "pass" == SCENARIO.expected, checks
    shares = {(c["scheme"], c["nodes"]): c["share"] for c in checks["moved_share"]["evidence"]["changes"]}
    for change in ("3 → 4", "4 → 3"):
        assert 0.65 < shares[("modulo", change)] < 0.85
        assert 0.15 < shares[("ketama", change)] < 0.35
        assert 0.15 < shares[("slots", change)] < 0.35
    # What the engine moved is what the checker computed on its own from the keys and the nodes.
    for scheme in SCHEMES:
        assert [m["share"] for m in result["schemes"][scheme]["moves"]] == [
            shares[(scheme, "3 → 4")],
            shares[(scheme, "4 → 3")],
        ]
    # Every node served reads while it was a member, redis4 included.
    assert all(load["redis4"] > 0 for load in (result["schemes"][s]["load"][1] for s in SCHEMES))
    moved = [e["data"] for e in events if (e.get("data") or {}).get("type") == "node"]
    assert {m["scheme"] for m in moved} == set(SCHEMES)
    assert checks["placed"]["evidence"]["entries"] > 0
    # The probe keys, cached before redis4 joined and written while it served them, were read
    # fresh once they were back on their old nodes (the workload may have written them since).
    assert result["written"] and all(result["read_back"][k] >= v for k, v in result["written"].items())


@pytest.mark.parametrize("seed", [7, 1])
def test_a_key_that_moves_back_finds_its_old_entry_when_moved_entries_are_kept(supervisor, seed):
    ctx, result, checks, events = run_dedicated(supervisor, {"delete_moved": False}, seed=seed)
    stale = checks["no_stale_read"]
    assert stale["held"] is False
    stale_probes = {k for k, v in result["read_back"].items() if v < result["written"][k]}
    # The modulo probe comes back to exactly the node it left, which still holds its old entry.
    assert stale_probes
    assert stale_probes <= {s["key"] for s in stale["evidence"]["stale_reads"]} | set(stale["evidence"]["windows_s"])
    assert all(s["from"] == "cache" for s in stale["evidence"]["stale_reads"])
    assert checks["placed"]["held"] is False
    assert [e for e in events if (e.get("data") or {}).get("type") == "node"], "the keys still move"
    assert not [e for e in events if e["kind"] == "cmd" and " moved " in e["label"]], "but no entry is deleted"


def test_consistent_hashing_and_slots_move_keys_only_to_the_node_that_joins_or_from_the_one_that_leaves():
    for scheme in ("ketama", "slots"):
        before, joined, left = placements(scheme, KEYS)
        assert {joined[k] for k in KEYS if before[k] != joined[k]} == {"redis4"}
        assert {joined[k] for k in KEYS if joined[k] != left[k]} == {"redis4"}
    before, joined, _ = placements("modulo", KEYS)
    assert {(before[k], joined[k]) for k in KEYS if before[k] != joined[k]} - {(n, "redis4") for n in MEMBERSHIP[0]}, (
        "modulo also moves keys between nodes that stayed"
    )


def test_the_slot_map_gives_each_node_an_equal_share_moving_only_what_it_must():
    slots = Slots(MEMBERSHIP[0])
    assert [slots.owner.count(n) for n in MEMBERSHIP[0]] == [5461, 5462, 5461]
    before = list(slots.owner)
    slots.resize(MEMBERSHIP[1])
    assert [slots.owner.count(n) for n in MEMBERSHIP[1]] == [4096] * 4
    assert sum(a != b for a, b in zip(before, slots.owner, strict=True)) == 4096
    # Redis Cluster's own slots: CRC16 of the key, or of its {hash tag}.
    assert Slots.slot_of("foo") == 12182
    assert Slots.slot_of("{user1000}.following") == Slots.slot_of("{user1000}.followers")


def test_placed_fails_on_a_stale_entry_and_on_an_entry_on_the_wrong_node(supervisor):
    with finished_run(supervisor) as (ctx, result, store):
        assert checkers_scale.placed(ctx, result).held is True
        key = KEYS[0]
        home = placements("ketama", KEYS)[-1][key]
        stranger = next(n for n in MEMBERSHIP[0] if n != home)
        conn = store.db()
        try:
            version, value = store.rows(conn)[key]
        finally:
            conn.close()
        r = redis_of(ctx, home)
        r.set(store.cache_key(f"ketama:{key}"), encode(version - 1 if version > 1 else 0, value))
        check = checkers_scale.placed(ctx, result)
        assert check.held is False
        assert [(d["key"], d["node"]) for d in check.evidence["differing"]] == [(key, home)]
        r.delete(store.cache_key(f"ketama:{key}"))
        redis_of(ctx, stranger).set(store.cache_key(f"ketama:{key}"), encode(version, value))
        check = checkers_scale.placed(ctx, result)
        assert check.held is False
        assert check.evidence["misplaced"] == [
            {"node": stranger, "scheme": "ketama", "key": key, "version": version, "assigned": home}
        ]


def test_moved_share_fails_when_every_key_shares_one_hash_tag(supervisor):
    with finished_run(supervisor, {"keys": 20, "steps": 1}) as (ctx, result, store):
        assert checkers_scale.moved_share(ctx, result).held is True
        conn = store.db()
        try:
            with conn.cursor() as cur:
                cur.execute("DELETE FROM items")
                cur.executemany(
                    "INSERT INTO items (`key`, value, version, updated_at) VALUES (%s, 'x', 1, NOW(6))",
                    [(f"{{cart}}:{i}",) for i in range(200)],
                )
        finally:
            conn.close()
        check = checkers_scale.moved_share(ctx, result)
        assert check.held is False
        # All 200 keys live in one slot: they stay together, or move together.
        slots = [c for c in check.evidence["changes"] if c["scheme"] == "slots"]
        assert {c["share"] for c in slots} <= {0.0, 1.0}
        assert "slots" in check.evidence["summary"]


def test_it_judges_the_changes_a_button_made_as_it_judges_the_schedules(supervisor):
    # redis5 added by hand after the second round: 3 → 4, then the schedule's join 4 → 5 (redis4)
    # and its leave 5 → 4.
    control = FaultAt({2: ("add-shard", "redis5")})
    ctx, result, checks, events = run_dedicated(supervisor, {"steps": 3}, control=control)
    assert verdict_of(list(checks.values())) == "pass", checks
    assert [(c["kind"], c["node"], c["by"]) for c in result["changes"]] == [
        ("add", "redis5", "button"),
        ("add", "redis4", "the scenario"),
        ("remove", "redis4", "the scenario"),
    ]
    assert result["membership"][-1] == ["redis1", "redis2", "redis3", "redis5"]
    judged = {(c["scheme"], c["nodes"]) for c in checks["moved_share"]["evidence"]["changes"]}
    assert judged == {(s, n) for s in SCHEMES for n in ("3 → 4", "4 → 5", "5 → 4")}
    # redis5 served reads once it had joined.
    assert any(load.get("redis5", 0) > 0 for load in result["schemes"]["ketama"]["load"])


def test_it_refuses_to_add_a_node_that_serves_already_or_to_remove_the_last(supervisor):
    control = FaultAt({1: ("add-shard", "redis1"), 2: ("remove-shard", "redis5")})
    ctx, result, checks, events = run_dedicated(supervisor, {"steps": 1, "keys": 20}, control=control)
    refused = [e["label"] for e in events if e["kind"] == "log" and "failed" in e["label"]]
    assert any("redis1 already serves keys" in r for r in refused), refused
    assert any("redis5 serves no keys" in r for r in refused), refused
    assert [c["by"] for c in result["changes"]] == ["the scenario", "the scenario"]


def test_moved_share_fails_when_the_run_placed_keys_otherwise_than_its_scheme(supervisor):
    with finished_run(supervisor, {"keys": 100, "steps": 1}) as (ctx, result, store):
        assert checkers_scale.moved_share(ctx, result).held is True
        # The ring's keys moved as modulo moves them: keys between nodes that stayed.
        join = result["changes"][0]
        join["moved"]["ketama"] = dict(join["moved"]["modulo"])
        check = checkers_scale.moved_share(ctx, result)
        assert check.held is False
        ketama = next(c for c in check.evidence["changes"] if c["scheme"] == "ketama" and c["nodes"] == "3 → 4")
        assert ketama["misplaced_by_the_run"] > 0
        assert check.evidence["summary"].startswith("ketama 3 → 4 (redis4 joins) the run moved")


def test_a_killed_node_costs_its_keys_their_cache_not_their_reads(supervisor):
    control = FaultAt(
        {2: ("kill", "redis2"), 4: ("restart", "redis2"), 5: ("pause", "redis3"), 6: ("resume", "redis3")}
    )
    ctx, result, checks, events = run_dedicated(supervisor, {"steps": 3}, control=control)
    assert verdict_of(list(checks.values())) == "pass", checks
    reads = ctx.history.completed("read")
    assert reads and all(op["type"] == "ok" for op in reads), "no client saw an error"
    opened = {
        e["data"]["node"]
        for e in events
        if (e.get("data") or {}).get("type") == "breaker" and e["data"]["state"] == "open"
    }
    assert {"redis2", "redis3"} <= opened
    # While redis2 was down its keys were read from the table.
    kill, restart = (
        next(e["seq"] for e in events if e["kind"] == "fault" and e["data"]["kind"] == k) for k in ("kill", "restart")
    )
    down_reads = [e for e in events if kill < e["seq"] < restart and (e.get("data") or {}).get("type") == "read"]
    assert down_reads and any(e["data"]["from"] == "db" for e in down_reads)
