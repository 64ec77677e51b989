"""The transactions lab in a real browser: the XA panel of a coordinator crash, live and scrubbed,
and the compare page of 2PC and 3PC started from the lab page."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_xa_panel_shows_in_doubt_branches_their_locks_and_the_blocked_client(
    live_stack, student_user, browser_page
):
    page = browser_page
    name = "2pc-coordinator-crash-before-decision"
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/transactions/")
    form = page.get_by_test_id(f"run-form-{name}")
    form.locator("select[name=speed]").select_option("0")
    form.get_by_test_id(f"run-{name}").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass", timeout=SLOW)

    table = page.get_by_test_id("xa-table")
    victim = table.locator("tbody tr").first
    expect(victim).to_contain_text("coordinator crashed after-prepare")
    expect(victim.locator(".xa-state--rolled-back")).to_have_count(2)  # recovery rolled both back
    expect(page.get_by_test_id("xa-locks")).to_contain_text("None.")

    # Scrubbed to the moment the client asks for the locked row, the branches are in doubt.
    seq = page.evaluate(
        "distlab.events.find(e => e.kind === 'state' && e.actor === 'client' && e.data.state === 'WAITING').seq"
    )
    page.evaluate(f"distlab.player.scrubTo({seq})")
    expect(page.get_by_test_id("xa-caption")).to_contain_text("2 prepared branches are in doubt")
    expect(victim.locator(".xa-state--prepared")).to_have_count(2)
    locks = page.get_by_test_id("xa-locks")
    expect(locks).to_contain_text("accounts id=")
    expect(locks).to_contain_text("Client waits for accounts id=")
    expect(page.get_by_test_id("xa-decisions")).to_contain_text("Empty. Presumed abort")
    assert page.errors == []


def test_comparing_2pc_and_3pc_runs_both_with_one_seed_side_by_side(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/transactions/")
    # The 3PC partition is the engine's own (its messages dropped), and the page says so.
    expect(page.locator("#scenario-3pc-partition")).to_contain_text("simulated inside the engine")
    form = page.get_by_test_id("compare-form")
    # Fields by the parameter they set, as the form submits them.
    form.locator("[name=seed]").fill("42")
    form.locator("[name=transfers]").fill("2")
    form.locator("[name=crash_transfer]").fill("2")
    form.get_by_test_id("compare-run").click()
    expect(page).to_have_url(re.compile(r"/runs/compare/\?a=\d+&b=\d+$"), timeout=SLOW)
    expect(page.get_by_text("Same seed: yes (42)")).to_be_visible()
    two_pc, three_pc = page.get_by_test_id("compare-run-1"), page.get_by_test_id("compare-run-2")
    expect(two_pc).to_contain_text("2pc-coordinator-crash-before-decision")
    expect(three_pc).to_contain_text("3pc-coordinator-crash")
    for run in (two_pc, three_pc):
        expect(run.get_by_test_id("compare-verdict")).to_have_attribute("data-verdict", "pass", timeout=SLOW)
        expect(run.get_by_test_id("compare-timeline")).to_contain_text("coordinator crashed")
        # Both crashed during the second transfer: the first one committed.
        expect(run.get_by_test_id("compare-timeline")).to_contain_text(
            re.compile(r"commit r\d+-t1.*-t2.*coordinator crashed")
        )
    # 2PC blocked a client for its lock wait; 3PC's rows were free at once.
    expect(two_pc.get_by_test_id("compare-blocked")).to_contain_text(re.compile(r"Blocked time: 1\.\d\d s"))
    expect(three_pc.get_by_test_id("compare-blocked")).to_contain_text(re.compile(r"Blocked time: [\d.]+ ms"))
    assert page.errors == []
