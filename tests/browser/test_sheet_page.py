"""A lab sheet in a real browser: from the lab page to its sheet, each checkpoint's state with the
run behind it, and a question's answer saved and shown back."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.classroom.judge import judge_run
from apps.runs.models import Run
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/shots-h5"


@pytest.fixture
def lost_update_run(student_user):
    """alice's finished run of lost-update that failed, judged as the worker judges it (before the
    browser starts: Playwright's loop forbids the ORM)."""
    run = Run.objects.create(
        owner=student_user,
        lab="locks",
        scenario="lost-update",
        params={"clients": 3, "increments": 5, "think_ms": 20},
        seed=1,
        status="done",
        verdict="fail",
        expected="fail",
        finished_at=timezone.now(),
    )
    judge_run(run)
    return run


def test_the_sheet_shows_states_and_saves_an_answer(live_stack, student_user, lost_update_run, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/locks/")
    page.get_by_test_id("lab-sheet-link").get_by_role("link").click()
    expect(page).to_have_url(f"{live_stack.url}/sheets/locks/locks/")
    expect(page.locator("h1")).to_have_text("Distributed locks: which ones keep two clients out")

    passed = page.get_by_test_id("checkpoint-lost-update-fails")
    expect(passed).to_have_attribute("data-state", "passed")
    expect(passed.get_by_test_id("passed-run-lost-update-fails")).to_have_attribute(
        "href", f"/runs/{lost_update_run.pk}/"
    )
    tried = page.get_by_test_id("checkpoint-lost-update-one-client")
    expect(tried).to_have_attribute("data-state", "tried")
    expect(tried.get_by_test_id("reason-lost-update-one-client")).to_contain_text(
        "clients is 3, this needs clients = 1"
    )
    expect(page.get_by_test_id("checkpoint-redlock-restart-fails")).to_have_attribute("data-state", "not-started")
    page.screenshot(path=f"{SHOTS}/sheet-states.png", full_page=False, clip=None)

    question = page.get_by_test_id("checkpoint-why-lost")
    question.scroll_into_view_if_needed()
    question.get_by_label("Your answer").fill("Every client reads before any writes: up to N-1 per round.")
    question.get_by_role("button", name="Save answer").click()
    expect(page.get_by_role("status")).to_have_text("Your answer is saved.")
    question = page.get_by_test_id("checkpoint-why-lost")
    expect(question).to_have_attribute("data-state", "answered")
    expect(question.get_by_label("Your answer")).to_have_value(
        "Every client reads before any writes: up to N-1 per round."
    )
    question.screenshot(path=f"{SHOTS}/sheet-answer.png")

    page.reload()
    expect(page.get_by_test_id("checkpoint-why-lost").get_by_label("Your answer")).to_have_value(
        "Every client reads before any writes: up to N-1 per round."
    )
    page.goto(f"{live_stack.url}/sheets/")
    expect(page.get_by_test_id("sheet-locks/locks")).to_contain_text("2/9 done")
    page.screenshot(path=f"{SHOTS}/sheets-list.png")
    assert page.errors == []
