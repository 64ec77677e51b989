"""The "flush the cache" button every cache scenario has: a real DEL of the run's entries, after
which the next reads of those keys go to the database."""

from apps.runs.registry import LABS, get_scenario
from tests.conftest import lab_node_urls
from tests.engine import ScriptedControl, run_engine


def test_every_cache_scenario_offers_the_flush_button():
    for scenario in LABS["cache"].scenarios.values():
        assert scenario.fault("flush", "cache") is not None, scenario.name


def test_flushing_empties_the_cache_and_the_next_reads_miss():
    scenario = get_scenario("cache", "cache-aside")
    button = {"action": "fault", "kind": "flush", "target": "cache", "by": "alice"}
    control = ScriptedControl([button])  # taken at the first step boundary: the cache is filled by then
    ctx, result, checks, events = run_engine(
        scenario, lab_node_urls(), {"steps": 4, "read_ratio": 1.0, "keys": 5, "ttl_ms": 5000}, control=control
    )
    flushed = [e for e in events if e["kind"] == "fault" and e["data"]["kind"] == "flush"]
    assert len(flushed) == 1 and flushed[0]["actor"] == "alice"
    assert flushed[0]["data"]["deleted"] > 0
    flush_seq = flushed[0]["seq"]
    settle_seq = next(e["seq"] for e in events if e["kind"] == "phase" and e["data"].get("phase") == "settle")
    # Reads only, and the steps take far less than the TTL: before the settle, a key misses once
    # when first read, and again only because the flush deleted it.
    served = [e["data"] for e in events if e["kind"] == "state" and e["data"].get("type") == "read"]
    before = [
        e["data"] for e in events if e["kind"] == "state" and e["data"].get("type") == "read" and e["seq"] < flush_seq
    ]
    between = [
        e["data"]
        for e in events
        if e["kind"] == "state" and e["data"].get("type") == "read" and flush_seq < e["seq"] < settle_seq
    ]
    cached_before = {r["key"] for r in before}
    assert cached_before and served
    assert any(r["from"] == "db" and r["key"] in cached_before for r in between)
    assert all(c["held"] for c in checks), checks
