"""The run page in a real browser: a student starts a ping run from the lab page, watches its steps
arrive live, gets the verdict, and scrubs back through the history and forward again."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in, wait_for_the_end_event

ROUNDS = 3
PROBES_PER_ROUND = 3  # MariaDB, Redis, ZooKeeper: one command each
CONNECTS = 3  # each node's connection is opened, and shown, before round 1

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_a_ping_run_live_then_scrubs_back_and_forward(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)

    page.goto(f"{live_stack.url}/labs/diagnostics/")
    form = page.get_by_test_id("run-form-ping")
    form.locator("#ping-rounds").fill(str(ROUNDS))
    form.locator("#ping-speed").select_option("2")
    form.get_by_test_id("run-ping").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)

    # Steps appear while the run is still going: a command row is on screen with the status "running".
    commands = page.locator("#cmdlog [data-testid=cmd-row]")
    page.wait_for_function(
        """() => document.querySelectorAll('#cmdlog [data-testid=cmd-row]').length >= 1
                 && document.getElementById('run-status').dataset.status === 'running'""",
        timeout=SLOW,
    )
    seen_live = commands.count()
    page.wait_for_function(
        "n => document.querySelectorAll('#cmdlog [data-testid=cmd-row]').length > n", arg=seen_live, timeout=SLOW
    )

    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_have_attribute("data-verdict", "pass", timeout=SLOW)
    expect(verdict).to_have_text("pass")
    expect(page.get_by_test_id("run-status")).to_have_text("done", timeout=SLOW)
    expect(commands).to_have_count(CONNECTS + ROUNDS * PROBES_PER_ROUND)

    # Scrubbed back to an early event, every panel shows the run as it was then.
    scrubber = page.get_by_test_id("scrubber")
    last = int(scrubber.get_attribute("max"))
    assert last > 20
    scrubber.fill("12")
    expect(page.get_by_test_id("live")).not_to_be_checked()
    expect(commands).not_to_have_count(CONNECTS + ROUNDS * PROBES_PER_ROUND)
    assert commands.count() < CONNECTS + ROUNDS * PROBES_PER_ROUND
    expect(verdict).to_have_attribute("data-verdict", "")
    expect(verdict).not_to_have_text("pass")

    # And forward to the end again: the verdict is back.
    scrubber.fill(str(last))
    expect(verdict).to_have_attribute("data-verdict", "pass")
    expect(commands).to_have_count(CONNECTS + ROUNDS * PROBES_PER_ROUND)

    assert page.errors == []


def test_stepping_through_a_command_drawn_as_a_message_moves_the_dot_and_the_latest_mark(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/locks/")
    # How long it takes is told before it starts, and again on the run page.
    expect(page.get_by_test_id("duration-redis-lease")).to_have_text(
        re.compile(r"^Takes about \d+ s at 2 steps/s with the default parameters\.$")
    )
    form = page.get_by_test_id("run-form-redis-lease")
    form.locator("[name=clients]").fill("2")
    form.locator("[name=operations]").fill("1")
    form.locator("select[name=speed]").select_option("0")
    form.get_by_test_id("run-redis-lease").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass", timeout=SLOW)
    wait_for_the_end_event(page)
    expect(page.get_by_test_id("run-duration")).to_have_text(re.compile(r"^about \d+ s at 2 steps/s$"))

    # A locks run sends no `msg`: its commands are what the diagrams draw. Stepping onto one shows
    # the dot carrying it in the node diagram and marks its reply as the latest row.
    first = page.evaluate("() => window.distlab.events.findIndex((e) => e.kind === 'cmd' && e.data.node !== e.actor)")
    assert first >= 0
    page.click("#pb-start")
    page.evaluate("k => window.distlab.player.scrubTo(k)", first)
    page.click("#step-forward")
    seq = page.evaluate("() => window.distlab.events[window.distlab.player.k - 1].seq")
    expect(page.locator("#nodes .dot")).to_have_attribute("data-seq", re.compile(rf"^{seq}r?$"))
    expect(page.locator("#lamport .row--msg.is-latest")).to_have_attribute("data-seq", f"{seq}r")
    assert page.errors == []
