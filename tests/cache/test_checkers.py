"""Each cache checker fed real data on the real MariaDB and Redis: honest runs hold, and a stale
entry put in Redis and read through a client, a wrong cached entry, or a row that lost an
acknowledged write, fails — whatever the engine's result claims."""

import random
from dataclasses import dataclass

import pytest

from apps.cache import checkers, common
from apps.cache.engine.clients import Client
from apps.cache.engine.races import delayed_keys
from apps.cache.engine.store import Store, encode
from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from tests.conftest import lab_node_urls

# What an engine that believed everything went well would report: checkers must not rely on it.
ALL_WELL = {"keys": ["item00001"], "redis_node": None}


@dataclass
class CacheRun:
    ctx: RunContext
    store: Store
    alice: Client
    bob: Client

    def put_entry(self, key, version, value="stale"):
        """A cached entry written straight into Redis, as a late fill of an old row would leave it."""
        self.store.redis().set(self.store.cache_key(key), encode(version, value), px=60_000)

    def sql(self, statement, args=()):
        conn = self.store.db()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
        finally:
            conn.close()


def make_lab(**params):
    clean, errors = get_scenario("cache", "cache-aside").validate({"keys": 3, **params})
    assert not errors
    run_id = random.randrange(10**8, 10**9)
    recorder = Recorder(run_id, [ListSink()])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params=clean, seed=7, recorder=recorder, nodes=nodes)
    store = Store(nodes)
    store.create(clean["keys"], random.Random(7))
    ttl = clean["ttl_ms"]
    return (
        CacheRun(ctx, store, Client(ctx, "alice", store, ttl_ms=ttl), Client(ctx, "bob", store, ttl_ms=ttl)),
        nodes,
        recorder,
    )


@pytest.fixture
def lab():
    made, nodes, recorder = make_lab()
    yield made
    made.alice.close()
    made.bob.close()
    nodes.cleanup()
    recorder.close()


def test_honest_reads_and_writes_hold_every_invariant(lab):
    lab.alice.read("item00001")
    lab.bob.write("item00001")
    assert lab.alice.read("item00001") == 2  # the delete made it a miss: v2 from the row
    assert lab.alice.read("item00001") == 2
    for check in (checkers.no_stale_read, checkers.convergence, checkers.acknowledged_writes):
        assert check(lab.ctx, ALL_WELL).held is True


def test_a_stale_entry_read_through_the_client_breaks_no_stale_read(lab):
    lab.bob.write("item00001")  # v2 acknowledged
    lab.put_entry("item00001", 1)
    assert lab.alice.read("item00001") == 1  # served v1 from the cache
    check = checkers.no_stale_read(lab.ctx, ALL_WELL)
    assert check.held is False
    (stale,) = check.evidence["stale_reads"]
    assert (stale["key"], stale["client"], stale["served"], stale["from"]) == ("item00001", "alice", 1, "cache")
    assert stale["newer"]["version"] == 2 and stale["newer"]["by"] == "bob"
    assert list(check.evidence["windows_ms"]) == ["item00001"]
    # Judged on other keys only, the same history holds.
    assert checkers.no_stale_read(lab.ctx, ALL_WELL, keys={"item00002"}).held is True


def test_a_read_concurrent_with_the_write_is_not_stale(lab):
    op = lab.ctx.history.invoke("alice", "read", {"key": "item00001"})
    lab.bob.write("item00001")
    lab.ctx.history.ok(op, {"key": "item00001", "version": 1, "from": "db"})
    assert checkers.no_stale_read(lab.ctx, ALL_WELL).held is True


def test_stale_within_ttl_breaks_only_when_the_stale_read_comes_a_ttl_after_the_write():
    made, nodes, recorder = make_lab(ttl_ms=100)
    try:
        made.bob.write("item00001")
        made.put_entry("item00001", 1)
        made.alice.read("item00001")
        within = common.STALE_WITHIN_TTL.check
        assert within(made.ctx, ALL_WELL).held is True  # at once: within what a TTL allows
        made.ctx.cancelled.wait(0.15)  # one TTL later the old version is still served
        made.alice.read("item00001")
        check = within(made.ctx, ALL_WELL)
        assert check.held is False and check.evidence["stale"] == 1
    finally:
        made.alice.close()
        made.bob.close()
        nodes.cleanup()
        recorder.close()


def test_a_wrong_cached_entry_breaks_convergence(lab):
    lab.alice.read("item00002")  # an honest entry: v1 equals its row
    lab.bob.commit("item00001")  # the row at v2, its old entry never deleted
    lab.put_entry("item00001", 1)
    check = checkers.convergence(lab.ctx, ALL_WELL)
    assert check.held is False
    (wrong,) = check.evidence["differing"]
    assert (wrong["key"], wrong["cached"], wrong["row"]) == ("item00001", 1, 2) and wrong["expires_in_ms"] > 0
    assert check.evidence["cached"] == 2
    assert checkers.convergence(lab.ctx, ALL_WELL, keys={"item00002"}).held is True


def test_a_row_rolled_back_under_an_acknowledged_write_breaks_acknowledged_writes(lab):
    lab.bob.write("item00001")
    lab.bob.write("item00001")  # v3 acknowledged
    lab.sql("UPDATE items SET version = 2 WHERE `key` = %s", ("item00001",))
    check = checkers.acknowledged_writes(lab.ctx, ALL_WELL)
    assert check.held is False
    (lost,) = check.evidence["lost"]
    assert (lost["key"], lost["acknowledged"]["version"], lost["row"]) == ("item00001", 3, 2)
    lab.sql("DELETE FROM items WHERE `key` = %s", ("item00001",))
    assert checkers.acknowledged_writes(lab.ctx, ALL_WELL).evidence["lost"][0]["row"] is None


def test_a_stale_read_after_a_long_second_delete_breaks_the_double_delete_invariant():
    clean, _ = get_scenario("cache", "double-delete").validate({"reader_ms": 20, "ttl_ms": 1000})
    run_id = random.randrange(10**8, 10**9)
    recorder = Recorder(run_id, [ListSink()])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params=clean, seed=7, recorder=recorder, nodes=nodes)
    store = Store(nodes)
    store.create(6, random.Random(7))
    reader, writer = Client(ctx, "reader", store, ttl_ms=1000), Client(ctx, "writer", store, ttl_ms=1000)
    try:
        (short, _), (long, delay_ms) = delayed_keys(20)[0], delayed_keys(20)[-1]
        for key in (short, long):
            writer.write(key)
            store.redis().set(store.cache_key(key), encode(1, "old"), px=1000)
        assert checkers.stale_after_double_delete(ctx, ALL_WELL).held is True
        ctx.cancelled.wait(delay_ms / 1000.0 + 0.02)  # past the longest delay: the old value is still there
        reader.read(short)
        assert checkers.stale_after_double_delete(ctx, ALL_WELL).held is True  # a short delay is measured only
        reader.read(long)
        check = checkers.stale_after_double_delete(ctx, ALL_WELL)
        assert check.held is False
        assert [(s["key"], s["served"]) for s in check.evidence["stale_reads"]] == [(long, 1)]
    finally:
        reader.close()
        writer.close()
        nodes.cleanup()
        recorder.close()


def test_a_run_that_never_reached_its_clients_is_unknown(lab):
    for check in (checkers.no_stale_read, checkers.convergence, checkers.acknowledged_writes):
        assert check(lab.ctx, None).held is None
