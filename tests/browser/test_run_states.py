"""The run page tells every state with its reason, in a real browser: a queued run its place in
the queue and, once stopped, who stopped it (also after a reload); a fault a student pressed is
credited to the student in the command log and in the verdict, which says what it cost; the verdict
comes with `done`."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from apps.runs.api import apply_control
from apps.runs.launch import create_run, enqueue
from tests.browser.conftest import SLOW, log_in
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def off_the_loop(fn, *args, **kwargs):
    """Runs database work in a thread of its own: Playwright's sync API runs an event loop in the
    test's thread, where Django refuses to query."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def queue_run(owner, rounds, speed):
    run = create_run(owner, "diagnostics", "ping", {"rounds": rounds}, speed=speed)
    enqueue(run)
    return run


def wait_for_status(run, finished_or_status, what):
    def reached():
        run.refresh_from_db()
        return run.is_finished if finished_or_status is None else run.status == finished_or_status

    off_the_loop(wait_until, reached, 60, what)


# Records, at the moment the status line first says `done`, what the verdict panel says.
VERDICT_AT_DONE = """
window.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("run-status");
  if (!status) return;
  new MutationObserver(() => {
    if (status.dataset.status === "done" && window.verdictAtDone === undefined) {
      window.verdictAtDone = document.getElementById("verdict").dataset.verdict;
    }
  }).observe(status, { attributes: true, attributeFilter: ["data-status"] });
});
"""


def test_a_run_stopped_while_queued_says_who_stopped_it_also_after_a_reload(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    # The only worker slot is taken by a slow run, so the next one waits in the queue.
    busy = off_the_loop(queue_run, student_user, 200, 0.5)
    wait_for_status(busy, "running", "the first run to start")
    waiting = off_the_loop(queue_run, student_user, 3, 0.5)
    try:
        page.goto(f"{live_stack.url}/runs/{waiting.pk}/")
        detail = page.get_by_test_id("run-detail")
        expect(detail).to_have_text("queued: next in line, waiting for a free worker", timeout=SLOW)
        expect(page.get_by_test_id("verdict-panel")).to_contain_text("next in line")

        page.click("#ctl-stop")
        for _ in ("live", "after a reload"):
            expect(page.get_by_test_id("run-status")).to_have_text("cancelled", timeout=SLOW)
            expect(detail).to_contain_text("cancelled: stopped by alice")
            expect(page.get_by_test_id("failure-reason")).to_contain_text("stopped by alice")
            expect(page.get_by_test_id("verdict")).not_to_have_text("no verdict yet")
            expect(page.locator("#connection")).to_have_attribute("data-state", "complete")
            page.reload()
    finally:
        off_the_loop(apply_control, busy, {"action": "stop", "by": "alice"})
        wait_for_status(busy, None, "the slow run to stop")
    assert page.errors == []


def test_a_students_fault_is_credited_to_the_student_and_explains_the_verdict(live_stack, student_user, browser_page):
    page = browser_page
    page.add_init_script(VERDICT_AT_DONE)
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/diagnostics/")
    form = page.get_by_test_id("run-form-ping")
    form.locator("#ping-rounds").fill("8")
    form.locator("#ping-speed").select_option("2")
    form.get_by_test_id("run-ping").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)

    # Pressed while the prober is still going: its next MariaDB probe meets a killed connection.
    expect(page.get_by_test_id("run-status")).to_have_text("running", timeout=SLOW)
    expect(page.locator("#cmdlog [data-testid=cmd-row]").first).to_be_visible(timeout=SLOW)
    page.click("#faults button[data-kind=kill-connections][data-target=mariadb]")

    fault_row = page.locator("#cmdlog tr[data-kind=fault]")
    expect(fault_row).to_have_count(1, timeout=SLOW)
    expect(fault_row.locator(".cmdlog__who")).to_have_text("alice → mariadb")

    expect(page.get_by_test_id("run-status")).to_have_text("done", timeout=SLOW)
    # The verdict was there the moment the status said done, not seconds later.
    assert page.evaluate("window.verdictAtDone") == "fail"
    faults = page.get_by_test_id("verdict-fault")
    expect(faults).to_have_count(1)
    expect(faults.first).to_have_attribute("data-who", "alice")
    expect(faults.first).to_contain_text(re.compile(r"^alice: kill-connections mariadb at \d"))
    expect(page.get_by_test_id("verdict-match")).to_have_text("unexpected, explained by the faults injected")
    broken = page.locator("[data-invariant=all_nodes_answered]")
    expect(broken).to_have_attribute("data-held", "false")
    expect(broken.get_by_test_id("invariant-faults")).to_contain_text("alice: kill-connections mariadb")
    # What the fault cost, in the checker's terms: the probes that went unanswered.
    expect(page.get_by_test_id("verdict-cost")).to_have_text(
        re.compile(
            r"^You killed the connections on mariadb at [\d.]+ m?s; all_nodes_answered broke: "
            r"\d+ probes? went unanswered \(mariadb answered \d of 8\)\.$"
        )
    )
    assert page.errors == []
