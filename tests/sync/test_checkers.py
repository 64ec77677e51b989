"""Each sync checker fed a real B on the real MariaDB: equal to A, then broken as syncers break it
(a row missing, a row A deleted still there, a business key twice, a row left at an older
version). Every checker must see it from the servers, whatever the engine's result says."""

import random
from dataclasses import dataclass

import pytest

from apps.runs.context import RunContext
from apps.runs.nodes import SharedNodes
from apps.runs.recorder import ListSink, Recorder
from apps.runs.registry import get_scenario
from apps.sync import checkers
from apps.sync.engine.tables import Pair, create_tables, read_rows
from apps.sync.engine.workload import Workload
from tests.conftest import lab_node_urls

# What an engine that believed everything went well would report: checkers must not rely on it.
ALL_WELL = {"tables": True, "copied": 10**6, "failures": 0}
CHECKERS = (checkers.b_equals_a, checkers.no_duplicate_keys, checkers.acknowledged_writes, checkers.per_key_order)


@dataclass
class Tables:
    ctx: RunContext
    pair: Pair
    workload: Workload

    def b(self, statement, args=()):
        conn = self.pair.target()
        with conn.cursor() as cur:
            cur.execute(statement, args)
            rows = cur.fetchall()
        conn.close()
        return rows

    def copy_a_into_b(self):
        """B made exactly A, as a perfect syncer would leave it."""
        source = self.pair.source()
        rows = read_rows(source, "A")
        source.close()
        self.b("DELETE FROM b")
        conn = self.pair.target()
        with conn.cursor() as cur:
            statement = "INSERT INTO b (id, bkey, value, version, updated_at) VALUES (%s, %s, %s, %s, %s)"
            cur.executemany(statement, rows)
        conn.close()
        return rows

    def verdicts(self):
        return {check.__name__: check(self.ctx, ALL_WELL).held for check in CHECKERS}


def make_tables(keyed_target):
    scenario = get_scenario("sync", "naive-latest")
    params, errors = scenario.validate({"rows": 12})
    assert not errors
    run_id = random.randrange(10**8, 10**9)
    recorder = Recorder(run_id, [ListSink()])
    nodes = SharedNodes(run_id, **lab_node_urls())
    ctx = RunContext(run_id=run_id, params=params, seed=7, recorder=recorder, nodes=nodes)
    pair = Pair(nodes)
    create_tables(pair, keyed_target=keyed_target)
    workload = Workload(ctx, pair, random.Random(7))
    workload.load(params["rows"])
    return Tables(ctx, pair, workload), nodes, recorder


@pytest.fixture(params=[True, False], ids=["keyed-b", "own-key-b"])
def tables(request):
    """A loaded with 12 rows (the load acknowledged in the history) and an empty B, keyed by A's
    id or with a key of its own."""
    t, nodes, recorder = make_tables(keyed_target=request.param)
    yield t
    t.workload.close()
    nodes.cleanup()
    recorder.close()


@pytest.fixture
def own_key_tables():
    t, nodes, recorder = make_tables(keyed_target=False)
    yield t
    t.workload.close()
    nodes.cleanup()
    recorder.close()


def test_every_checker_holds_when_b_is_a_copy_of_a(tables):
    tables.workload.update(3)
    tables.workload.delete(5)
    tables.workload.insert()
    tables.copy_a_into_b()
    assert tables.verdicts() == dict.fromkeys(tables.verdicts(), True)
    evidence = checkers.b_equals_a(tables.ctx, ALL_WELL).evidence
    assert evidence["summary"] == "B equals A: 12 rows, every chunk of 1000 ids alike (1)"
    assert evidence["rows"] == {"A": 12, "B": 12}


def test_a_missing_row_breaks_b_equals_a_and_acknowledged_writes(tables):
    tables.copy_a_into_b()
    tables.b("DELETE FROM b WHERE id IN (2, 4, 9)")
    assert tables.verdicts() == {
        "b_equals_a": False,
        "no_duplicate_keys": True,
        "acknowledged_writes": False,
        "per_key_order": True,
    }
    equal = checkers.b_equals_a(tables.ctx, ALL_WELL).evidence
    assert equal["summary"] == "B is missing 3 rows, e.g. id 2, 4, 9 (1 chunk of 1 differed)"
    assert [m["id"] for m in equal["missing"]] == [2, 4, 9]
    assert equal["missing"][0]["A"]["bkey"] == "k0000002"
    acked = checkers.acknowledged_writes(tables.ctx, ALL_WELL).evidence
    assert acked["summary"] == "3 acknowledged writes not in B, e.g. id 2 v1, 4 v1, 9 v1"
    assert [w["id"] for w in acked["lost_writes"]] == [2, 4, 9]


def test_a_row_a_deleted_and_a_row_a_never_had_are_extra_rows_in_b(tables):
    tables.copy_a_into_b()
    tables.workload.delete(6)  # acknowledged by A, never applied to B
    # A stray row far past A's ids: one more chunk, not a million empty ones.
    tables.b("INSERT INTO b (id, bkey, value, version, updated_at) VALUES (10000000, 'stray', 'x', 1, NOW(6))")
    equal = checkers.b_equals_a(tables.ctx, ALL_WELL)
    assert equal.held is False
    assert equal.evidence["summary"] == "B has 2 ids A does not, e.g. id 6, 10000000 (2 chunks of 2 differed)"
    assert [e["id"] for e in equal.evidence["extra"]] == [6, 10000000]
    acked = checkers.acknowledged_writes(tables.ctx, ALL_WELL)
    assert acked.held is False
    assert acked.evidence["summary"] == "B still has 1 row A deleted, e.g. id 6"
    assert acked.evidence["rows_B_still_has"][0]["id"] == 6


def test_a_business_key_twice_in_b_breaks_no_duplicate_keys(own_key_tables):
    t = own_key_tables
    rows = t.copy_a_into_b()
    # The INSERT of row 7 retried after its reply was lost: B's own key takes it a second time.
    t.b("INSERT INTO b (id, bkey, value, version, updated_at) VALUES (%s, %s, %s, %s, %s)", rows[6])
    dup = checkers.no_duplicate_keys(t.ctx, ALL_WELL)
    assert dup.held is False
    assert dup.evidence["summary"] == "1 business key appears more than once in B, e.g. k0000007 (2 rows)"
    assert dup.evidence["keys"] == [{"bkey": "k0000007", "rows": 2}]
    equal = checkers.b_equals_a(t.ctx, ALL_WELL)
    assert equal.held is False and [c["id"] for c in equal.evidence["changed"]] == [7]
    assert len(equal.evidence["changed"][0]["B"]) == 2
    # The duplicate is a copy of an acknowledged write: nothing was lost, no key went back.
    assert checkers.acknowledged_writes(t.ctx, ALL_WELL).held is True
    assert checkers.per_key_order(t.ctx, ALL_WELL).held is True


def test_a_row_left_at_an_older_version_breaks_per_key_order(tables):
    tables.copy_a_into_b()
    tables.workload.update(8)
    tables.workload.update(8)  # A acknowledged v3; B still holds v1
    assert tables.verdicts() == {
        "b_equals_a": False,
        "no_duplicate_keys": True,
        "acknowledged_writes": False,
        "per_key_order": False,
    }
    order = checkers.per_key_order(tables.ctx, ALL_WELL).evidence
    assert order["summary"] == "1 key with another version in B than in A (1 older), e.g. id 8 (A v3, B v1)"
    assert order["keys"] == [{"id": 8, "A_version": 3, "B_version": 1}]
    acked = checkers.acknowledged_writes(tables.ctx, ALL_WELL).evidence
    assert acked["lost_writes"][0]["write"]["version"] == 3 and acked["lost_writes"][0]["B_versions"] == [1]
    changed = checkers.b_equals_a(tables.ctx, ALL_WELL).evidence["changed"]
    assert [(c["A"]["version"], [r["version"] for r in c["B"]]) for c in changed] == [(3, [1])]


def test_a_row_changed_behind_the_syncers_back_is_caught_by_its_checksum(tables):
    tables.copy_a_into_b()
    tables.b("UPDATE b SET value = 'drifted' WHERE id = 11")  # same version: only the data tells
    equal = checkers.b_equals_a(tables.ctx, ALL_WELL)
    assert equal.held is False
    assert equal.evidence["summary"] == "1 row differs, e.g. id 11 (1 chunk of 1 differed)"
    assert checkers.per_key_order(tables.ctx, ALL_WELL).held is True


def test_a_delete_whose_reply_was_lost_may_have_removed_the_row_from_b(tables):
    tables.copy_a_into_b()
    op = tables.ctx.history.invoke("workload", "delete", {"id": 4})
    conn = tables.pair.source()
    with conn.cursor() as cur:
        cur.execute("DELETE FROM a WHERE id = 4")
    conn.close()
    tables.ctx.history.info(op, "2013: Lost connection to server during query")
    tables.b("DELETE FROM b WHERE id = 4")
    assert tables.verdicts() == dict.fromkeys(tables.verdicts(), True)
    # Had no delete been tried, the same B lacks an acknowledged row.
    tables.b("DELETE FROM b WHERE id = 5")
    acked = checkers.acknowledged_writes(tables.ctx, ALL_WELL)
    assert acked.held is False and [w["id"] for w in acked.evidence["lost_writes"]] == [5]


def test_a_checker_says_unknown_when_the_run_ended_before_its_tables(tables):
    for check in CHECKERS:
        assert check(tables.ctx, None).held is None
        assert check(tables.ctx, {"tables": False}).held is None
