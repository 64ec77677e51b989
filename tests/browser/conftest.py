"""A real Chromium (Debian's) for the browser tests, and logging in through the login page."""

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import PASSWORDS

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous: a run is queued, picked up by the worker, and paced at 2 steps per second.
SLOW = 90_000


@pytest.fixture
def browser_page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()


def wait_for_the_end_event(page):
    """A viewer who opens a run after it finished gets its final status (and so the verdict) before
    the stored events: a test that reads the events waits for the last, the end event, as well."""
    page.wait_for_function(
        "() => window.distlab && distlab.events.length > 0 && distlab.events.at(-1).kind === 'end'", timeout=SLOW
    )


def log_in(page, base_url, user):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORDS[user.get_username()])
    page.click("#login-submit")
    expect(page).to_have_url(f"{base_url}/")
