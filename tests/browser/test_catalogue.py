"""The catalogue in a real browser: from a lab's card on the home page to its scenario, from a long
lab page's index to a scenario, and from a refused comparison to a pair of runs of one lab."""

import re

import pytest
from playwright.sync_api import expect

from apps.runs.models import Run
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_card_links_each_scenario_and_the_lab_page_index_jumps_to_it(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    locks = page.get_by_test_id("lab-card-locks")
    expect(locks.locator("details")).not_to_have_attribute("open", "")  # the long text waits one click away
    locks.locator("summary").click()
    expect(locks.locator("details p")).to_be_visible()

    locks.get_by_role("link", name="ZooKeeper lock: the herd effect").click()
    expect(page).to_have_url(f"{live_stack.url}/labs/locks/#scenario-zk-herd")
    expect(page.locator("#scenario-zk-herd h2")).to_be_in_viewport()

    page.locator("#scenario-zk-herd").get_by_role("link", name="↑ all scenarios").click()
    index = page.get_by_test_id("scenario-index")
    expect(index).to_be_in_viewport()
    index.get_by_role("link", name="A Redis lease", exact=True).click()
    expect(page).to_have_url(re.compile(r"#scenario-redis-lease$"))
    expect(page.locator("#scenario-redis-lease h2")).to_be_in_viewport()
    assert page.errors == []


@pytest.fixture
def two_pings_and_a_lock(student_user):
    """Three of alice's runs, made before the browser starts (Playwright's loop forbids the ORM)."""
    return [
        Run.objects.create(owner=student_user, lab=lab, scenario=scenario, seed=seed, expected="pass")
        for lab, scenario, seed in (("diagnostics", "ping", 1), ("diagnostics", "ping", 2), ("locks", "lost-update", 3))
    ]


def test_compare_refuses_two_labs_and_its_picker_opens_two_runs_of_one_lab(
    live_stack, student_user, two_pings_and_a_lock, browser_page
):
    ping, other_ping, lock = two_pings_and_a_lock
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/runs/compare/?a={ping.pk}&b={lock.pk}")
    expect(page.get_by_test_id("compare-errors")).to_contain_text("only two runs of the same lab can be compared")
    expect(page.get_by_test_id("compare")).to_have_count(0)

    picker = page.get_by_test_id("compare-pick")
    opened = picker.get_by_test_id("compare-open")
    expect(opened).to_be_disabled()
    picker.get_by_test_id("compare-a").select_option(str(ping.pk))
    expect(picker.get_by_test_id("compare-b").locator(f'option[value="{ping.pk}"]')).to_be_disabled()
    expect(opened).to_be_disabled()
    picker.get_by_test_id("compare-b").select_option(str(other_ping.pk))
    opened.click()

    expect(page).to_have_url(f"{live_stack.url}/runs/compare/?a={ping.pk}&b={other_ping.pk}")
    expect(page.get_by_test_id("compare-run-1")).to_contain_text(f"Run #{ping.pk}")
    expect(page.get_by_test_id("compare-run-2")).to_contain_text(f"Run #{other_ping.pk}")
    assert page.errors == []
