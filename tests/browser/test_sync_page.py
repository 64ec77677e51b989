"""The data sync lab in a real browser: a finished naive loop shows, key by key, the rows B is missing
that the checker found (and its earlier state when scrubbed back), a chunked full copy draws its
retries and their backoff on a timeline, and a checksum repair draws its chunks as a grid."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in, wait_for_the_end_event

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def finished_run(page, base_url, scenario, **params):
    page.goto(f"{base_url}/labs/sync/")
    form = page.get_by_test_id(f"run-form-{scenario}")
    for name, value in params.items():
        form.locator(f"[name={name}]").fill(str(value))
    form.locator("select[name=speed]").select_option("0")
    form.get_by_test_id(f"run-{scenario}").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(page.get_by_test_id("verdict")).not_to_have_attribute("data-verdict", "", timeout=SLOW)
    wait_for_the_end_event(page)
    return page.get_by_test_id("panel-sync")


def evidence(page, invariant):
    script = f"distlab.events.at(-1).data.invariants.find(i => i.name === '{invariant}').evidence"
    return page.evaluate(script)


def test_a_finished_naive_loop_shows_the_rows_b_is_missing_as_the_checker_found_them(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    panel = finished_run(page, live_stack.url, "naive-latest", steps=6)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "fail")

    found = evidence(page, "b_equals_a")
    assert found["missing_in_B"] > 0
    counters = panel.get_by_test_id("sync-counters")
    expect(counters.locator("[data-counter=missing] .sync-counter__value")).to_have_text(str(found["missing_in_B"]))
    expect(counters.locator("[data-counter=A] .sync-counter__value")).to_have_text(str(found["rows"]["A"]))
    expect(counters.locator("[data-counter=B] .sync-counter__value")).to_have_text(str(found["rows"]["B"]))
    # The first key the checker lists as missing has its line: A's row, and nothing in B.
    first = found["missing"][0]
    line = panel.locator(f".sync-row[data-id='{first['id']}']")
    expect(line).to_have_attribute("data-status", "missing")
    expect(line.locator(".sync-cell--A.sync-cell--version")).to_have_text(f"v{first['A']['version']}")
    expect(line.locator(".sync-cell--B").first).to_have_text("")
    expect(line.locator(".sync-flow")).to_contain_text("missing from B")
    caption = panel.get_by_test_id("sync-caption")
    expect(caption).to_contain_text(f"The checker read both servers again: {found['missing_in_B']} keys missing from B")
    expect(panel.get_by_test_id("sync-convergence")).to_contain_text("never")
    # A naive loop reads no binlog and checksums nothing: those parts step aside.
    expect(panel.get_by_test_id("sync-tape")).to_be_hidden()
    expect(panel.get_by_test_id("sync-chunks")).to_be_hidden()

    # Scrubbed back to B's first row: that row is in both, A's others are not in B yet, no verdict.
    landed = page.evaluate("distlab.events.find(e => e.data.type === 'row' && e.data.table === 'B')")
    page.evaluate(f"distlab.player.scrubTo({landed['seq']})")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "")
    expect(panel.locator(f".sync-row[data-id='{landed['data']['id']}']")).to_have_attribute("data-status", "equal")
    expect(counters.locator("[data-counter=B] .sync-counter__value")).to_have_text("1")
    expect(counters.locator("[data-counter=missing]")).to_have_count(0)
    expect(counters.locator("[data-counter=behind]")).to_be_visible()

    page.evaluate("distlab.player.scrubTo(0)")
    expect(panel.get_by_test_id("sync-caption")).to_have_text("Waiting for table A to be loaded…")
    assert page.errors == []


def test_a_full_copy_draws_each_failed_attempt_and_its_backoff_on_the_retry_timeline(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    panel = finished_run(page, live_stack.url, "full-copy", steps=4)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass")

    retries = page.evaluate("distlab.events.filter(e => e.data.type === 'retry').map(e => e.data)")
    assert len(retries) >= 3  # the target's connections are killed on three attempts in a row
    timeline = panel.get_by_test_id("sync-retries")
    expect(timeline).to_be_visible()
    expect(timeline.locator(".sync-retry")).to_have_count(len(retries))
    lane = retries[0]["what"]
    attempts = [str(r["attempt"]) for r in retries if r["what"] == lane]
    expect(timeline.locator(".sync-retries__name", has_text=lane)).to_have_count(1)
    drawn = timeline.locator(".sync-retry").evaluate_all("gs => gs.map(g => g.dataset.attempt)")
    assert drawn[: len(attempts)] == attempts
    # Each wait is drawn inside the window its full jitter was drawn from.
    widths = timeline.locator(".sync-retry").evaluate_all(
        "gs => gs.map(g => [g.querySelector('.sync-retry__wait').getAttribute('width'),"
        " g.querySelector('.sync-retry__cap')?.getAttribute('width')])"
    )
    for wait, cap in widths:
        assert cap is not None and float(wait) <= float(cap)
    expect(timeline.get_by_test_id("sync-retries-note")).to_contain_text(f"{len(retries)} failed attempts")
    expect(panel.get_by_test_id("sync-caption")).to_contain_text("The checker read both servers again: B equals A.")
    expect(panel.get_by_test_id("sync-tape")).to_be_hidden()
    assert page.errors == []


def test_checksum_repair_draws_the_chunks_green_and_red_and_lists_the_rows_it_repaired(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    panel = finished_run(page, live_stack.url, "checksum-repair", rows=40, steps=4)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass")
    grid = panel.get_by_test_id("sync-chunks-grid")
    passes = page.evaluate("distlab.events.filter(e => e.kind === 'log' && e.data.pass != null).map(e => e.data)")
    expect(grid.locator(".sync-chunk")).to_have_count(passes[-1]["chunks"])

    # At the first repair: that chunk is drawn repaired, with the rows it compared listed under it.
    repaired = page.evaluate("distlab.events.find(e => e.data.type === 'chunk' && e.data.state === 'repaired')")
    page.evaluate(f"distlab.player.scrubTo({repaired['seq']})")
    chunk = grid.locator(f".sync-chunk[data-i='{repaired['data']['i']}']")
    expect(chunk).to_have_attribute("data-state", "repaired")
    first = repaired["data"]["rows"][0]
    expect(panel.locator(".sync-chunks__list li").first).to_contain_text(f"id {first['id']}:")
    assert page.errors == []
