"""The instructor's board in a real browser, with two people at once: a student runs a checkpoint's
scenario from the lab page, the real worker finishes and judges it, and the instructor's open
board turns the student's cell to passed without a reload, linking to the run that passed it."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from apps.classroom.models import Assignment, Classroom, Membership
from apps.classroom.sheets import all_sheets
from tests.browser.conftest import CHROMIUM_ARGS, SLOW, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shots(tmp_path):
    """Where the screenshots go: DISTLAB_SHOTS to keep them for a look, else the test's tmp dir."""
    folder = Path(os.environ["DISTLAB_SHOTS"]) if os.environ.get("DISTLAB_SHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def off_the_loop(fn, *args, **kwargs):
    """Database work in a thread of its own: Playwright's sync API runs an event loop in the test's
    thread, where Django refuses to query."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


# Scenarios whose verdict a run reaches every time with the right params, quickly: the test needs
# the pass to happen, not to be likely.
STEADY = (("diagnostics", "ping"), ("locks", "lost-update"))


def value_meeting(constraint):
    op, value = constraint.op, constraint.value
    if op == "in":
        return value[0]
    return {">": value + 1, "<": value - 1}.get(op, value) if op != "!=" else None


@pytest.fixture
def board_checkpoint():
    """A shipped sheet's checkpoint a steady scenario passes, with the form values that meet it."""
    for lab, scenario in STEADY:
        for sheet in all_sheets().values():
            for checkpoint in sheet.runs:
                wanted = (checkpoint.lab, checkpoint.scenario, checkpoint.verdict) == (lab, scenario, "pass")
                if wanted and all(c.op != "!=" for c in checkpoint.constraints):
                    return sheet.slug, checkpoint, {c.param: value_meeting(c) for c in checkpoint.constraints}
    pytest.fail(f"no shipped sheet has a checkpoint that one of {STEADY} passes")


@pytest.fixture
def two_people():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        pages = []
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.errors = []
            page.on("pageerror", lambda error, page=page: page.errors.append(str(error)))
            pages.append(page)
        try:
            yield pages
        finally:
            browser.close()


def test_the_board_fills_live_as_a_students_run_passes_a_checkpoint(
    live_stack, board_checkpoint, student_user, other_student, instructor, two_people, shots
):
    sheet, checkpoint, values = board_checkpoint
    key = f"{sheet}#{checkpoint.id}"
    scenario = checkpoint.scenario

    def make_class():
        classroom = Classroom.objects.create(name="Distributed systems, Monday")
        classroom.instructors.add(instructor)
        Membership.objects.create(classroom=classroom, user=student_user)
        Membership.objects.create(classroom=classroom, user=other_student)
        Assignment.objects.create(classroom=classroom, sheet=sheet, position=1)
        return classroom

    classroom = off_the_loop(make_class)
    board, lab = two_people
    log_in(board, live_stack.url, instructor)
    board.goto(f"{live_stack.url}/classes/{classroom.pk}/board/")
    expect(board.get_by_test_id("board-connection")).to_have_attribute("data-state", "live")
    alice_row = board.locator(f"tr[data-student='{student_user.pk}']")
    cell = alice_row.locator(f"td[data-key='{key}']")
    expect(cell).to_have_attribute("data-state", "empty")
    expect(board.get_by_test_id("board-row")).to_have_count(2)
    board.screenshot(path=shots / "board-before.png", full_page=True)
    # Marks the page, so a reload (which would drop the mark) cannot pass for a live update.
    board.evaluate("window.boardNeverReloaded = true")

    log_in(lab, live_stack.url, student_user)
    lab.goto(f"{live_stack.url}/labs/{checkpoint.lab}/")
    form = lab.get_by_test_id(f"run-form-{scenario}")
    for name, value in values.items():
        field = form.locator(f"#{scenario}-{name}")
        if isinstance(value, bool):
            field.set_checked(value)
        elif field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))
    form.locator(f"#{scenario}-speed").select_option("0")
    form.get_by_test_id(f"run-{scenario}").click()
    expect(lab).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    run_id = int(re.search(r"/runs/(\d+)/$", lab.url).group(1))
    expect(lab.get_by_test_id("run-status")).to_have_text("done", timeout=SLOW)

    expect(cell).to_have_attribute("data-state", "passed", timeout=SLOW)
    link = cell.get_by_test_id("board-pass")
    expect(link).to_have_attribute("href", f"/runs/{run_id}/")
    expect(cell).to_have_class(re.compile(r"\bis-changed\b"))
    expect(alice_row.get_by_test_id("board-passed")).to_have_text(re.compile(r"^1/\d+$"))
    expect(board.locator(f"tfoot td[data-key='{key}']")).to_have_text("1/2")
    assert board.evaluate("window.boardNeverReloaded") is True
    board.screenshot(path=shots / "board-after.png", full_page=True)

    link.click()
    expect(board).to_have_url(f"{live_stack.url}/runs/{run_id}/")
    assert board.errors == [] and lab.errors == []
