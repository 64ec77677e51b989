"""The history page's import in a real browser: a student uploads an exported run and watches it
replay as their own, read-only; a broken file is refused with its line number."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from apps.runs.launch import create_run
from apps.runs.models import Run
from apps.runs.runner import execute
from apps.runs.transfer import export_lines
from tests.browser.conftest import SLOW, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def exports(other_student, tmp_path):
    """A finished run of someone else's, exported whole and with a broken line 3. Made before the
    browser starts: Playwright's sync API runs an event loop in the test's thread, where Django
    refuses to query."""
    original = execute(create_run(other_student, "diagnostics", "ping", {"rounds": 2}, 9).pk, broadcast=False)
    lines = list(export_lines(original))
    good, bad = tmp_path / "ping.jsonl", tmp_path / "broken.jsonl"
    good.write_text("".join(lines))
    bad.write_text("".join([*lines[:2], "{oops\n", *lines[3:]]))
    return original, good, bad


def imported_runs(owner):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: list(Run.objects.filter(owner=owner).values_list("pk", flat=True))).result()


def test_an_uploaded_export_replays_as_a_read_only_run(live_stack, student_user, exports, browser_page):
    original, good, bad = exports
    page = browser_page
    log_in(page, live_stack.url, student_user)

    page.goto(f"{live_stack.url}/runs/")
    page.locator("#import-file").set_input_files(str(bad))
    page.get_by_test_id("run-import").get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("import-error")).to_contain_text("broken.jsonl: line 3: not JSON")
    assert imported_runs(student_user) == []

    page.locator("#import-file").set_input_files(str(good))
    page.get_by_test_id("run-import").get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    [copy] = imported_runs(student_user)
    assert page.url.endswith(f"/runs/{copy}/")
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass", timeout=SLOW)
    expect(page.get_by_test_id("run-status")).to_have_text("done")
    scrubber = page.get_by_test_id("scrubber")
    expect(scrubber).to_have_attribute("max", str(original.events_count), timeout=SLOW)
    expect(page.get_by_test_id("controls")).to_have_count(0)  # no controls on a record
    assert page.errors == []
