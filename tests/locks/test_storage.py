"""The protected resource on the real shared MariaDB: sections stamped by the server's clock, the
fenced write, and the checkers that read them back."""

import random
from types import SimpleNamespace

import pytest

from apps.locks import checkers
from apps.locks.engine.storage import Conflict, Storage
from apps.runs.nodes import SharedNodes
from tests.conftest import lab_node_urls


@pytest.fixture
def nodes():
    nodes = SharedNodes(random.randrange(10**8, 10**9), **lab_node_urls())
    yield nodes
    nodes.cleanup()


def result_of(storage, acknowledged):
    return {"storage": storage.describe(), "acknowledged": acknowledged}


def test_it_catches_two_clients_in_the_critical_section_at_once_by_the_storage_clock(nodes):
    events = []
    storage = Storage.on(nodes, rows=2, emit=lambda kind, **f: events.append((kind, f))).setup()
    c1, c2 = storage.client("c1"), storage.client("c2")
    first = c1.enter(row=1)
    second = c2.enter(row=1)
    c2.increment(1)
    c2.leave(second)
    c1.increment(1)
    c1.leave(first)
    third = c1.enter(row=1)
    c1.leave(third)
    ctx = SimpleNamespace(nodes=nodes)
    check = checkers.mutual_exclusion(ctx, result_of(storage, 2))
    assert check.held is False
    assert [(p["first"]["id"], p["second"]["id"]) for p in check.evidence["pairs"]] == [(first.id, second.id)]
    assert checkers.no_lost_update(ctx, result_of(storage, 2)).held is True
    assert checkers.no_lost_update(ctx, result_of(storage, 3)).evidence["lost"] == 1
    cs = [f["data"] for kind, f in events if kind == "state" and f["data"]["type"] == "cs"]
    assert [(d["id"], d["end_ms"] is None) for d in cs[:2]] == [(first.id, True), (second.id, True)]
    assert cs[-1]["start_ms"] >= cs[0]["start_ms"] >= 0
    assert any(kind == "cmd" and f["data"]["command"].startswith("INSERT INTO sections") for kind, f in events)


def test_sections_on_different_rows_or_both_reading_do_not_conflict(nodes):
    storage = Storage.on(nodes, rows=2).setup()
    c1, c2, c3 = storage.client("c1"), storage.client("c2"), storage.client("c3")
    held = [c1.enter(row=1), c2.enter(row=2), c3.enter(row=2, mode="read")]
    c1.leave(held[0])
    c2.leave(held[1])
    c3.leave(held[2])
    reads = [c1.enter(row=1, mode="read"), c2.enter(row=1, mode="read")]
    for client, section in zip((c1, c2), reads, strict=True):
        client.leave(section)
    pairs = checkers.overlaps(storage.sections())
    assert [(a.client, b.client) for a, b in pairs] == [("c2", "c3")]


def test_the_storage_rejects_a_stale_fencing_token_and_the_accepted_ones_increase(nodes):
    storage = Storage.on(nodes, rows=1).setup()
    c1, c2 = storage.client("c1"), storage.client("c2")
    assert c1.fenced_increment(1, 33) is True
    assert c2.fenced_increment(1, 34) is True
    assert c1.fenced_increment(1, 33) is False
    assert storage.counters()[1] == (2, 2, 34)
    ctx = SimpleNamespace(nodes=nodes)
    check = checkers.fencing_monotonic(ctx, result_of(storage, 2))
    assert check.held is True
    assert check.evidence["accepted"] == [33, 34]
    assert check.evidence["rejected"] == [{"client": "c1", "token": 33, "last": 34}]


def test_a_regressing_token_is_caught():
    writes = [{"row": 1, "token": 5, "accepted": True}, {"row": 1, "token": 5, "accepted": True}]
    assert checkers.token_regressions(writes, []) == [{"where": "fenced_writes", "row": 1, "token": 5, "after": 5}]


def test_an_optimistic_write_on_a_changed_version_conflicts(nodes):
    storage = Storage.on(nodes, rows=1).setup()
    c1, c2 = storage.client("c1"), storage.client("c2")
    value, version = c1.read(1)
    c2.compare_and_set(1, value + 1, version)
    with pytest.raises(Conflict):
        c1.compare_and_set(1, value + 1, version)
    assert storage.counters()[1][:2] == (1, 1)


def test_a_storage_that_lost_its_last_token_accepts_a_stale_one_and_the_checker_sees_it(nodes):
    storage = Storage.on(nodes, rows=1).setup()
    c1, c2 = storage.client("c1"), storage.client("c2")
    assert c2.fenced_increment(1, 34) is True
    # A broken storage: the row forgets the last token it accepted (restored from an old backup).
    conn = storage.connection()
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE counter SET last_token = NULL WHERE id = %s", (1,))
    finally:
        conn.close()
    assert c1.fenced_increment(1, 33) is True
    check = checkers.fencing_monotonic(SimpleNamespace(nodes=nodes), result_of(storage, 2))
    assert check.held is False
    assert check.evidence["regressions"] == [{"where": "fenced_writes", "row": 1, "token": 33, "after": 34}]


def test_redlock_grants_the_storage_never_saw_or_without_a_majority_break_the_majority_check(nodes):
    storage = Storage.on(nodes, rows=1).setup()
    c1 = storage.client("c1")
    c1.leave(c1.enter(row=1, token="t1"))
    grants = [
        {"client": "c1", "votes": ["redis1", "redis2", "redis3"], "validity_ms": 900.0},
        {"client": "c2", "votes": ["redis4", "redis5"], "validity_ms": 900.0},
    ]
    result = result_of(storage, 1) | {
        "quorum": 3,
        "nodes": 5,
        "phases": [{"down": [], "acquired": 2, "refused": 0, "grants": grants}],
    }
    check = checkers.redlock_majority(SimpleNamespace(nodes=nodes), result)
    assert check.held is False
    assert [b["problem"] for b in check.evidence["broken"]] == [
        "granted without a majority",
        "2 grants but 1 critical sections in the storage",
    ]
