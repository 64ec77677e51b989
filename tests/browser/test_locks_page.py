"""The locks lab in a real browser: a lost update's overlapping critical sections in red beside the
checker's failure, a paced Redis lease run with a client paused from its button, and a ZooKeeper
lock's queue of znodes and watches, scrubbed back to a hand-over."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in, wait_for_the_end_event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def start(page, base_url, name, speed="0", **params):
    page.goto(f"{base_url}/labs/locks/")
    form = page.get_by_test_id(f"run-form-{name}")
    for key, value in params.items():
        form.locator(f"[name={key}]").fill(str(value))
    if speed is not None:  # None: the form's own default pace
        form.locator("select[name=speed]").select_option(speed)
    form.get_by_test_id(f"run-{name}").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)


def test_a_lost_update_shows_its_overlapping_sections_in_red_as_the_checker_found_them(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    start(page, live_stack.url, "lost-update")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "fail", timeout=SLOW)
    expect(page.locator("[data-invariant=mutual_exclusion]")).to_have_attribute("data-held", "false")
    wait_for_the_end_event(page)

    evidence = page.evaluate("distlab.events.at(-1).data.invariants.find(i => i.name === 'mutual_exclusion').evidence")
    timeline = page.get_by_test_id("locks-timeline")
    expect(timeline.locator(".locks-cs")).to_have_count(evidence["sections"])
    expect(page.get_by_test_id("locks-overlaps")).to_have_attribute("data-count", str(evidence["overlapping"]))
    red = timeline.locator(".locks-cs[data-overlap=true]")
    assert red.count() >= 2
    expect(red.first.locator(".locks-cs__bar")).to_have_css("fill", "rgb(207, 34, 46)")
    expect(page.get_by_test_id("locks-caption")).to_contain_text("Mutual exclusion broken")
    expect(page.get_by_test_id("locks-no-lock")).to_contain_text("No lock service")
    lanes = page.get_by_test_id("locks-lanes").locator("[data-client]")
    expect(lanes).to_have_count(3)
    for lane in lanes.all():
        expect(lane).to_have_attribute("data-state", "done")
    assert page.errors == []


def test_a_paced_redis_lease_run_shows_the_lease_and_a_client_paused_from_its_button(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    start(page, live_stack.url, "redis-lease", speed="5", clients=2, operations=40)
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "running", timeout=SLOW)

    # Pause buttons for the run's two clients only, though the scenario declares them for more.
    faults = page.locator("#faults")
    expect(faults.locator(".fault-group[data-target=c1]")).to_be_visible(timeout=SLOW)
    expect(faults.locator(".fault-group[data-target=c2]")).to_be_visible()
    expect(faults.locator(".fault-group[data-target=c3]")).to_be_hidden()

    faults.locator("button[data-kind=pause][data-target=c1]").click()
    lanes = page.get_by_test_id("locks-lanes")
    expect(lanes.locator("[data-client=c1]")).to_have_attribute("data-state", "paused", timeout=SLOW)
    expect(lanes.locator("[data-client=c1] .locks-state")).to_have_text("paused")
    lease = page.get_by_test_id("locks-lease")
    expect(lease).to_contain_text(re.compile(r"run\d+:lock:counter"))
    expect(lease.get_by_test_id("lease-ttl")).to_have_text(re.compile(r"left of 2\.00 s|no key"))

    faults.locator("button[data-kind=resume][data-target=c1]").click()
    expect(lanes.locator("[data-client=c1]")).not_to_have_attribute("data-state", "paused", timeout=SLOW)
    # The view may trail the run; whichever comes first, the stop or the last operation, ends it.
    page.locator("#ctl-stop").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute(
        "data-status", re.compile("cancelled|done"), timeout=SLOW
    )
    assert page.errors == []


def test_a_zk_lock_run_scrubbed_back_to_a_hand_over_shows_the_queue_and_the_watch_that_fired(
    live_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    start(page, live_stack.url, "zk-lock", clients=3, operations=2)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass", timeout=SLOW)
    lanes = page.get_by_test_id("locks-lanes").locator("[data-client]")
    expect(lanes).to_have_count(3)
    zk = page.get_by_test_id("locks-zk")
    expect(zk.locator(".locks-znode")).to_have_count(0)  # every lock znode deleted at the end
    timeline = page.get_by_test_id("locks-timeline")
    expect(timeline.locator(".locks-cs")).to_have_count(6)
    expect(page.get_by_test_id("locks-overlaps")).to_have_attribute("data-count", "0")

    # Back at the first hand-over: the holder's znode just went, its successor was notified.
    watch = page.evaluate("distlab.events.find(e => e.kind === 'msg' && e.data.type === 'watch')")
    page.evaluate(f"distlab.player.scrubTo({watch['seq']})")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "")
    fired = page.get_by_test_id("locks-watch-fired")
    expect(fired).to_contain_text(f"{watch['to']}: watch fired")
    expect(zk.locator(f".locks-znode.is-notified[data-client={watch['to']}]")).to_have_count(1)
    assert zk.locator(".locks-znode").count() >= 1
    assert timeline.locator(".locks-cs").count() < 6
    waiting = zk.locator(".locks-znode[data-role=waiting]")
    # Each waiter watches exactly one znode: the one just before its own.
    expect(zk.locator(".locks-watch")).to_have_count(waiting.count())
    expect(page.get_by_test_id("locks-lanes").locator("[data-state=done]")).not_to_have_count(3)

    page.evaluate("distlab.player.scrubTo(0)")
    expect(page.get_by_test_id("locks-lanes")).to_contain_text("No client yet.")
    assert page.errors == []
