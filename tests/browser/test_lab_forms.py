"""A lab page's run form in a real browser: what a number box cannot hold is refused beside the box,
not started with the default, and a bad seed is told like any other field's error."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def runs_of(page, base_url):
    return page.request.get(f"{base_url}/api/runs/").json()["runs"]


def test_letters_in_a_number_box_are_refused_with_the_fields_message(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/diagnostics/")
    form = page.get_by_test_id("run-form-ping")
    rounds = form.locator("[name=rounds]")
    rounds.fill("")
    rounds.press_sequentially("abc")
    form.get_by_test_id("run-ping").click()

    expect(form.locator('[data-error-for="rounds"]')).to_have_text("must be an integer")
    expect(rounds).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(f"{live_stack.url}/labs/diagnostics/")

    # What the box takes but cannot read as a number, it reports as empty: refused too.
    rounds.fill("")
    rounds.press_sequentially("--5")
    form.get_by_test_id("run-ping").click()
    expect(form.locator('[data-error-for="rounds"]')).to_have_text("must be an integer")
    expect(page).to_have_url(f"{live_stack.url}/labs/diagnostics/")
    assert runs_of(page, live_stack.url) == []

    # A decimal parameter says so in its own words.
    page.goto(f"{live_stack.url}/labs/mapreduce/")
    form = page.get_by_test_id("run-form-straggler")
    slow = form.locator("[name=slow_ms_per_record]")
    slow.fill("")
    slow.press_sequentially("abc")
    form.get_by_test_id("run-straggler").click()
    expect(form.locator('[data-error-for="slow_ms_per_record"]')).to_have_text("must be a number")
    assert runs_of(page, live_stack.url) == []
    assert page.errors == []


def test_a_bad_seed_is_told_beside_the_seed_as_a_parameter_would_be(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/diagnostics/")
    form = page.get_by_test_id("run-form-ping")
    form.locator("[name=rounds]").fill("2")
    seed = form.locator("[name=seed]")
    seed_error = form.locator('[data-error-for="seed"]')

    seed.press_sequentially("abc")  # refused in the browser, which could not read it
    form.get_by_test_id("run-ping").click()
    expect(seed_error).to_have_text("must be an integer")
    expect(seed).to_have_attribute("aria-invalid", "true")

    for typed, message in (("-1", "must be at least 0"), ("1.5", "must be an integer")):  # refused by the server
        seed.fill(typed)
        form.get_by_test_id("run-ping").click()
        expect(seed_error).to_have_text(message)
        expect(form.locator('[data-error-for="rounds"]')).to_be_hidden()
        expect(form.locator('[data-error-for="__all__"]')).to_be_hidden()
    assert runs_of(page, live_stack.url) == []

    seed.fill("7")
    form.get_by_test_id("run-ping").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    [run] = runs_of(page, live_stack.url)
    assert (run["seed"], run["params"]) == (7, {"rounds": 2})
    assert page.errors == []
