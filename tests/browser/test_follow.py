"""Present and follow in two real browsers: the instructor presents a run to the class and steps
through it; the student, told by the banner, follows and their view moves with the instructor's;
the student scrubs away, leaves following, and rejoins; the run stays the instructor's to control."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from apps.classroom.models import Classroom, Membership
from apps.runs.api import NOT_YOURS
from tests.browser.conftest import CHROMIUM_ARGS, SLOW, log_in, wait_for_the_end_event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def off_the_loop(fn, *args, **kwargs):
    """Database work in a thread of its own: Playwright's sync API runs an event loop in the test's
    thread, where Django refuses to query."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def shot(page, name):
    """A screenshot for a look at the pages, when DISTLAB_SHOTS names a folder."""
    if os.environ.get("DISTLAB_SHOTS"):
        folder = Path(os.environ["DISTLAB_SHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=folder / f"{name}.png")


@pytest.fixture
def two_browsers():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        pages = []
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.errors = []
            page.on("pageerror", lambda error, page=page: page.errors.append(str(error)))
            pages.append(page)
        try:
            yield pages
        finally:
            browser.close()


def view_k(page):
    return page.evaluate("() => window.distlab.player.k")


def a_class_and_a_finished_ping(live_stack, instructor, student_user, teacher, student):
    """The instructor's class with the student in it, both logged in, and a ping the instructor ran
    to its end from the lab page, open on the instructor's page; returns its URL."""

    def make_class():
        classroom = Classroom.objects.create(name="Distributed Systems 101")
        classroom.instructors.add(instructor)
        Membership.objects.create(classroom=classroom, user=student_user)

    off_the_loop(make_class)
    log_in(teacher, live_stack.url, instructor)
    log_in(student, live_stack.url, student_user)
    teacher.goto(f"{live_stack.url}/labs/diagnostics/")
    form = teacher.get_by_test_id("run-form-ping")
    form.locator("#ping-rounds").fill("3")
    form.locator("#ping-speed").select_option("0")
    form.get_by_test_id("run-ping").click()
    expect(teacher).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(teacher.get_by_test_id("run-status")).to_have_text("done", timeout=SLOW)
    wait_for_the_end_event(teacher)
    return teacher.url


def test_it_has_the_student_follow_the_instructors_view_leave_and_rejoin(
    live_stack, instructor, student_user, two_browsers
):
    teacher, student = two_browsers
    # The instructor runs a ping to the end (then presents it).
    run_url = a_class_and_a_finished_ping(live_stack, instructor, student_user, teacher, student)
    total = int(teacher.get_by_test_id("scrubber").get_attribute("max"))
    assert total > 12

    student.goto(f"{live_stack.url}/runs/")
    banner = student.get_by_test_id("classroom-banner")
    expect(banner).to_be_hidden()
    teacher.get_by_test_id("present-button").click()
    expect(teacher.get_by_test_id("presenting-now")).to_contain_text(
        "You are presenting this run to Distributed Systems 101"
    )

    # The student's page is told at once, whatever page it is on.
    expect(banner).to_contain_text(
        re.compile(r"charlie is presenting run #\d+ \(diagnostics / ping\) to Distributed Systems 101")
    )
    shot(student, "banner")
    banner.get_by_test_id("banner-follow").click()
    expect(student).to_have_url(re.compile(r"/runs/\d+/\?follow=\d+$"))
    assert student.url.split("?")[0] == run_url
    expect(student.get_by_test_id("follow-bar")).to_contain_text("Following charlie's presentation")
    # The student's page has no run controls: the run is the instructor's to steer.
    expect(student.get_by_test_id("controls")).to_have_count(0)

    # The instructor goes back to the start and steps: the student's view follows.
    teacher.locator("#pb-start").click()
    for _ in range(5):
        teacher.locator("#step-forward").click()
    assert view_k(teacher) == 5
    student.wait_for_function("() => window.distlab.player.k === 5", timeout=10_000)
    expect(student.get_by_test_id("live")).not_to_be_checked()
    # Presenter keys step too: shift+right is ten events.
    teacher.locator("body").press("Shift+ArrowRight")
    assert view_k(teacher) == 15
    student.wait_for_function("() => window.distlab.player.k === 15", timeout=10_000)
    shot(teacher, "presenter")
    shot(student, "follower")

    # The student scrubs on their own: they leave following, and the instructor's steps no longer move them.
    student.get_by_test_id("scrubber").fill("2")
    expect(student.get_by_test_id("follow-bar")).to_contain_text("You left charlie's presentation")
    teacher.locator("#step-back").click()
    assert view_k(teacher) == 14
    # The frame that would have moved the student has had time to arrive (the presenter's page
    # sends at once; see tests/classroom/test_presenting.py for the relay itself).
    student.wait_for_timeout(500)
    assert view_k(student) == 2
    shot(student, "left")

    # Rejoin snaps back to where the instructor is now.
    student.get_by_test_id("follow-rejoin").click()
    student.wait_for_function("() => window.distlab.player.k === 14", timeout=10_000)
    expect(student.get_by_test_id("follow-bar")).to_contain_text("Following charlie's presentation")

    # The student's attempt to steer the run over its websocket is refused with a clear message.
    refusal = student.evaluate(
        """(path) => new Promise((resolve) => {
             const ws = new WebSocket(`ws://${location.host}${path}`);
             ws.onopen = () => ws.send(JSON.stringify({action: "pause"}));
             ws.onmessage = (m) => { const f = JSON.parse(m.data); if (f.type === "error") { ws.close(); resolve(f.message); } };
           })""",
        student.evaluate("() => window.distlab.page.ws"),
    )
    assert refusal == NOT_YOURS

    # The instructor stops presenting: the follower is told, and the banner is gone.
    teacher.get_by_test_id("stop-presenting").click()
    expect(student.get_by_test_id("follow-bar")).to_contain_text("has ended")
    expect(teacher.get_by_test_id("present-form")).to_be_visible()
    assert teacher.errors == [] and student.errors == []


def test_it_refuses_to_follow_another_classes_presentation(
    live_stack, instructor, student_user, other_student, two_browsers
):
    from apps.classroom.presenting import start_presentation
    from apps.runs.models import Run

    _, student = two_browsers

    def make_classes():
        mine = Classroom.objects.create(name="Class A")
        Membership.objects.create(classroom=mine, user=student_user)
        theirs = Classroom.objects.create(name="Class B")
        theirs.instructors.add(instructor)
        Membership.objects.create(classroom=theirs, user=other_student)
        run = Run.objects.create(owner=instructor, lab="diagnostics", scenario="ping", seed=1, status="done")
        own = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="done")
        presentation, _ = start_presentation(theirs, run, instructor)
        return run, own, presentation

    run, own, presentation = off_the_loop(make_classes)

    log_in(student, live_stack.url, student_user)
    # The run is not shared with the student's class: the page itself is not theirs.
    assert student.goto(f"{live_stack.url}/runs/{run.pk}/?follow={presentation.pk}").status == 404
    student.goto(f"{live_stack.url}/runs/{own.pk}/?follow={presentation.pk}")
    expect(student.get_by_test_id("follow-bar")).to_contain_text(
        "Cannot follow: no such presentation, or it is not for a class of yours."
    )
    expect(student.get_by_test_id("classroom-banner")).to_be_hidden()
    assert student.errors == []


def highlighted(page):
    """The data-hl of every element the page marks as the presenter's highlight."""
    return page.evaluate("() => [...document.querySelectorAll('.is-hl')].map((el) => el.dataset.hl)")


def test_it_highlights_the_element_the_presenter_clicks_on_every_followers_page(
    live_stack, instructor, student_user, two_browsers
):
    teacher, student = two_browsers
    a_class_and_a_finished_ping(live_stack, instructor, student_user, teacher, student)
    teacher.get_by_test_id("present-button").click()
    expect(teacher.get_by_test_id("presenting-now")).to_be_visible()
    presentation = teacher.evaluate("() => window.distlab.follow.presenting[0]")
    student.goto(f"{teacher.url}?follow={presentation}")
    expect(student.get_by_test_id("follow-bar")).to_contain_text("Following charlie's presentation")
    # The instructor goes to the end of the recording, where every node and row is drawn.
    teacher.locator("#pb-end").click()
    k = view_k(teacher)
    student.wait_for_function(f"() => window.distlab.player.k === {k}", timeout=10_000)

    # A node of the diagram: a click inside its box marks the whole node on both pages.
    node = teacher.locator('#nodes g.node[data-hl^="node:"]').first
    name = node.get_attribute("data-node")
    assert node.get_attribute("data-hl") == f"node:{name}"
    node.click()
    expect(node).to_have_class(re.compile(r"\bis-hl\b"))
    on_student = student.locator(f'#nodes [data-hl="node:{name}"]')
    expect(on_student).to_have_class(re.compile(r"\bis-hl\b"), timeout=10_000)
    assert highlighted(student) == [f"node:{name}"]
    # The follower's bar says what is pointed at, whatever part of the page they are looking at.
    expect(student.get_by_test_id("follow-mark")).to_have_text(f"Pointing at node {name}.")

    # A row of the command log takes the mark over; pointing at it does not move anyone's view.
    row = teacher.locator('#cmdlog tr[data-hl^="cmd:"]').first
    mark = row.get_attribute("data-hl")
    assert mark == f"cmd:{row.get_attribute('data-seq')}"
    row.locator("td.cmdlog__command").click()
    expect(student.locator(f'#cmdlog [data-hl="{mark}"]')).to_have_class(re.compile(r"\bis-hl\b"), timeout=10_000)
    expect(on_student).not_to_have_class(re.compile(r"\bis-hl\b"))
    assert highlighted(teacher) == [mark]
    # A message of the space-time diagram, by its label.
    message = teacher.locator('#lamport g[data-hl^="msg:"]').first
    message_mark = message.get_attribute("data-hl")
    message.locator(".arrow__label").first.click()
    expect(student.locator(f'#lamport [data-hl="{message_mark}"]')).to_have_class(
        re.compile(r"\bis-hl\b"), timeout=10_000
    )
    assert view_k(teacher) == k and view_k(student) == k
    assert student.evaluate("() => window.distlab.follow.following") is True
    # Scrolled down, the follower's bar and the playback bar both stay at the top, one above the
    # other: neither covers the other's buttons.
    student.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    bar = student.get_by_test_id("follow-bar").bounding_box()
    play = student.locator("#play").bounding_box()
    assert bar["y"] <= 1 and play["y"] >= bar["y"] + bar["height"]
    # "Show it" brings the marked element into the follower's view.
    student.evaluate("() => window.scrollTo(0, 0)")
    marked = student.locator(f'#lamport [data-hl="{message_mark}"]')
    expect(marked).not_to_be_in_viewport()
    student.get_by_test_id("follow-show").click()
    expect(marked).to_be_in_viewport()

    # Clicking the marked element again clears the mark on both pages.
    teacher.locator(f'#lamport [data-hl="{message_mark}"] .arrow__label').first.click()
    student.wait_for_function("() => document.querySelectorAll('.is-hl').length === 0", timeout=10_000)
    assert highlighted(teacher) == []
    expect(student.get_by_test_id("follow-mark")).to_be_hidden()
    # The mark is the presenter's: a student's own click points at nothing for anyone.
    student.locator('#nodes g.node[data-hl^="node:"]').first.click()
    student.wait_for_timeout(300)
    assert highlighted(student) == [] and highlighted(teacher) == []
    assert teacher.errors == [] and student.errors == []
