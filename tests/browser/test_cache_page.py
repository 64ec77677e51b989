"""The cache lab in a real browser: a finished stale-set-race colours the raced keys and outlines
every stale read the checker counted (and, scrubbed back to the reader's late fill, shows the cache
holding v1 while the row is v2), a leases run lists the tokens handed out, invalidated and
refused, and a sharding run draws the ketama ring and the slot map as they were at each change."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in, wait_for_the_end_event

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished_run(page, base_url, scenario):
    page.goto(f"{base_url}/labs/cache/")
    form = page.get_by_test_id(f"run-form-{scenario}")
    form.locator("select[name=speed]").select_option("0")
    form.get_by_test_id(f"run-{scenario}").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(page.get_by_test_id("verdict")).not_to_have_attribute("data-verdict", "", timeout=SLOW)
    wait_for_the_end_event(page)
    return page.get_by_test_id("panel-cache")


def evidence(page, invariant):
    script = f"distlab.events.at(-1).data.invariants.find(i => i.name === '{invariant}').evidence"
    return page.evaluate(script)


def test_a_finished_stale_set_race_colours_the_stale_keys_and_outlines_each_stale_read(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    panel = finished_run(page, live_stack.url, "stale-set-race")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "fail")

    found = evidence(page, "no_stale_read")
    assert found["stale"] > 0 and found["windows_ms"]
    keys = panel.get_by_test_id("cache-keys")
    for key in found["windows_ms"]:
        line = keys.locator(f".cache-key[data-key='{key}']")
        expect(line).to_have_attribute("data-status", "stale")
        expect(line).to_have_class(re.compile(r"\bwas-stale\b"))
        expect(line.get_by_test_id("cache-checker-window")).to_contain_text("checker: stale window")
    # Every stale read the checker counted is outlined in its client's lane.
    expect(panel.get_by_test_id("cache-lanes").locator(".cache-op.is-stale")).to_have_count(found["stale"])
    caption = panel.get_by_test_id("cache-caption")
    expect(caption).to_contain_text(f"{found['stale']} of {found['reads']} reads were stale")
    expect(caption).to_have_class(re.compile(r"\bis-bad\b"))
    # No leases, placement, breaker or near cache in this scenario: those parts step aside.
    for part in ("cache-leases", "cache-shards", "cache-breakers", "cache-near-box"):
        expect(panel.get_by_test_id(part)).to_be_hidden()

    # Scrubbed back to the reader's fill that lands after the writer's delete: the entry is v1, the
    # row v2, and the line is coloured as differing, before any checker verdict.
    fill = page.evaluate(
        "distlab.events.find(e => e.data.type === 'entry' && e.data.op === 'set' && e.data.by === 'reader')"
    )
    page.evaluate(f"distlab.player.scrubTo({fill['seq']})")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "")
    line = keys.locator(f".cache-key[data-key='{fill['data']['key']}']")
    expect(line).to_have_attribute("data-status", "differ")
    expect(line.locator(".cache-cell--cache")).to_have_text(f"v{fill['data']['version']}")
    expect(line.locator(".cache-cell--db")).to_have_text(f"v{fill['data']['version'] + 1}")
    expect(caption).to_contain_text("differs from the table now")

    page.evaluate("distlab.player.scrubTo(0)")
    expect(caption).to_have_text("Waiting for the clients' first reads…")
    assert page.errors == []


def test_a_leases_run_lists_the_tokens_handed_out_invalidated_and_refused(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    panel = finished_run(page, live_stack.url, "leases")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass")

    leases = page.evaluate("distlab.events.filter(e => e.data.type === 'lease').map(e => e.data)")
    states = {s: sum(1 for x in leases if x["state"] == s) for s in ("granted", "used", "invalidated", "refused")}
    # The race's reader is handed a token, the write invalidates it, and its late fill is refused.
    assert states["invalidated"] > 0 and states["refused"] > 0
    box = panel.get_by_test_id("cache-leases")
    expect(box).to_be_visible()
    for state, n in states.items():
        expect(box.locator(f".cache-lease[data-state={state}] b")).to_have_text(str(n))
    refused = next(x for x in leases if x["state"] == "refused")
    expect(box.locator(".cache-lease-item[data-state=refused]").first).to_contain_text(
        f"token {refused['token']} on {refused['key']}"
    )
    expect(panel.get_by_test_id("cache-keys").locator(".cache-key.is-differ")).to_have_count(0)
    assert page.errors == []


@pytest.fixture
def shots(tmp_path):
    """Where the screenshots go: DISTLAB_SHOTS to keep them for a look, else the test's tmp dir."""
    folder = Path(os.environ["DISTLAB_SHOTS"]) if os.environ.get("DISTLAB_SHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_sharding_run_draws_the_ring_and_the_slot_map_as_they_were_at_each_change(
    live_stack, student_user, browser_page, shots
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    panel = finished_run(page, live_stack.url, "sharding")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass")
    ring = panel.get_by_test_id("cache-ring")
    slots = panel.get_by_test_id("cache-slot-map")
    # Finished: back on 3 nodes, 160 points each, every key on the ring and over the slots.
    expect(ring.locator(".cache-ring__point")).to_have_count(3 * 160)
    expect(ring.locator(".cache-ring__key")).to_have_count(200)
    expect(slots.locator(".cache-slots__ranges li[data-node=redis4]")).to_have_count(0)
    expect(slots.locator(".cache-slots__ranges li[data-node=redis1]").first).to_be_visible()
    page.screenshot(path=shots / "sharding-finished.png", full_page=True)

    # Scrubbed to the ring's change when redis4 joined: four nodes' points, the keys it took lit.
    join = page.evaluate(
        "distlab.events.find(e => e.data.type === 'shard' && e.data.scheme === 'ketama' && e.data.change === 'add')"
    )
    page.evaluate(f"distlab.player.scrubTo({join['seq']})")
    expect(ring.locator(".cache-ring__point")).to_have_count(4 * 160)
    expect(ring.locator(".cache-ring__key.is-moved")).to_have_count(join["data"]["moved"])
    expect(ring.locator(".cache-ring__point[data-node=redis4]")).to_have_count(160)
    expect(panel.get_by_test_id("cache-shard-moved").nth(1)).to_contain_text("redis4 joined")
    page.screenshot(path=shots / "sharding-join.png", full_page=True)
    panel.get_by_test_id("cache-shards").screenshot(path=shots / "sharding-join-placement.png")
    slot_join = page.evaluate(
        "distlab.events.find(e => e.data.type === 'shard' && e.data.scheme === 'slots' && e.data.change === 'add')"
    )
    page.evaluate(f"distlab.player.scrubTo({slot_join['seq']})")
    expect(slots.locator(".cache-slots__ranges li[data-node=redis4]")).not_to_have_count(0)
    panel.get_by_test_id("cache-shards").screenshot(path=shots / "sharding-slots-join.png")
    assert page.errors == []
