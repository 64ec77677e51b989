"""At the page's own pace: a paused lease holder can still be paused from its button, and the herd
scenario's closing text describes the herd."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in
from tests.browser.test_locks_page import start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_at_the_default_pace_the_lease_pause_lasts_long_enough_to_press_its_buttons(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    start(page, live_stack.url, "redis-lease-pause", speed=None)  # the form's default speed and parameters
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "running", timeout=SLOW)
    faults = page.locator("#faults")
    faults.locator("button[data-kind=pause][data-target=c2]").click()
    lanes = page.get_by_test_id("locks-lanes")
    expect(lanes.locator("[data-client=c2]")).to_have_attribute("data-state", "paused", timeout=SLOW)
    faults.locator("button[data-kind=resume][data-target=c2]").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=SLOW)
    pressed = page.evaluate("distlab.events.filter(e => e.kind === 'fault').map(e => [e.data.kind, e.to])")
    assert pressed == [["pause", "c2"], ["resume", "c2"]]
    assert page.errors == []


def test_the_herd_scenario_ends_describing_the_herd(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    start(page, live_stack.url, "zk-herd", speed="0", clients=2)
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "done", timeout=SLOW)
    zk = page.get_by_test_id("locks-zk")
    expect(zk.locator(".locks-znode")).to_have_count(0)  # the queue is empty at the end
    expect(zk.locator(".locks-zk__lesson")).to_have_text(re.compile("watches the parent.*herd effect"))
    assert page.errors == []
