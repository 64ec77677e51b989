"""Joining a class from the home page in a real browser: a wrong code is refused on the form with
a message that says what to do; the right one, typed as a student might, lands on the class page."""

import pytest
from playwright.sync_api import expect

from apps.classroom.models import Classroom
from tests.browser.conftest import log_in
from tests.browser.test_follow import off_the_loop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_wrong_code_is_refused_on_the_form_and_the_right_one_joins(
    live_stack, instructor, student_user, browser_page
):
    def make_class():
        classroom = Classroom.objects.create(name="Distributed systems")
        classroom.instructors.add(instructor)
        return classroom

    classroom = off_the_loop(make_class)
    page = browser_page
    log_in(page, live_stack.url, student_user)

    page.get_by_test_id("join-box").locator("#join-code").fill("NOPE2345")
    page.get_by_test_id("join-box").get_by_role("button", name="Join class").click()
    expect(page.get_by_test_id("join-error")).to_have_text(
        "no class has the join code NOPE2345; check it with your instructor (9 more wrong codes allowed this hour)"
    )
    # The code stays in the field to be corrected, and nothing was joined.
    expect(page.locator("#join-code")).to_have_value("NOPE2345")
    assert not off_the_loop(classroom.has_member, student_user)

    page.locator("#join-code").fill(f" {classroom.join_code.lower()} ")
    page.get_by_role("button", name="Join class").click()
    expect(page).to_have_url(f"{live_stack.url}/classes/{classroom.pk}/")
    expect(page.locator("body")).to_contain_text("You joined Distributed systems.")
    assert off_the_loop(classroom.has_member, student_user)
    assert page.errors == []
