"""Classes as staff and students use them: create, join with a code, the class page, members,
sharing a run, the admin and the demo data."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.classroom.models import (
    JOIN_FAILURES_PER_HOUR,
    Assignment,
    Classroom,
    FailedJoin,
    Membership,
    SharedRun,
)
from apps.runs.models import Run

pytestmark = pytest.mark.django_db


def logged_in(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def make_class(instructor, name="Distributed systems", students=()):
    classroom = Classroom.objects.create(name=name)
    classroom.instructors.add(instructor)
    for student in students:
        Membership.objects.create(classroom=classroom, user=student)
    return classroom


def ping_run(owner, **fields):
    return Run.objects.create(owner=owner, lab="diagnostics", scenario="ping", seed=1, status="done", **fields)


def join_api(client, code):
    return client.post("/api/classes/join/", {"code": code}, content_type="application/json")


@pytest.fixture
def dana(django_user_model):
    """A second instructor, who teaches another class."""
    return django_user_model.objects.create_user("dana", password="labdemo-dana-pw", is_staff=True)


# Creating and joining --------------------------------------------------------------------------


def test_it_lets_staff_create_a_class_with_a_join_code_and_makes_them_its_instructor(instructor):
    response = logged_in(instructor).post("/classes/", {"name": "Distributed systems, autumn"})
    classroom = Classroom.objects.get(name="Distributed systems, autumn")
    assert response.status_code == 302 and response["Location"] == f"/classes/{classroom.pk}/"
    assert list(classroom.instructors.all()) == [instructor]
    assert len(classroom.join_code) == 8
    page = logged_in(instructor).get(response["Location"]).content.decode()
    assert classroom.join_code in page


def test_it_says_a_class_needs_a_name(instructor):
    response = logged_in(instructor).post("/classes/", {"name": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Classroom.objects.exists()


def test_it_refuses_to_let_a_student_create_a_class(student_user):
    assert logged_in(student_user).post("/classes/", {"name": "Mine"}).status_code == 403
    assert not Classroom.objects.exists()


def test_it_joins_a_student_with_the_code_whatever_its_case_and_surrounding_spaces(instructor, student_user):
    classroom = make_class(instructor)
    client = logged_in(student_user)
    response = client.post("/classes/join/", {"code": f"  {classroom.join_code.lower()} "})
    assert response.status_code == 302 and response["Location"] == f"/classes/{classroom.pk}/"
    assert classroom.has_member(student_user)
    assert "You joined Distributed systems." in client.get(response["Location"]).content.decode()


def test_it_tells_a_student_on_the_form_that_a_code_is_wrong(instructor, student_user):
    make_class(instructor)
    response = logged_in(student_user).post("/classes/join/", {"code": "NOPE2345"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-testid="join-error"' in page
    assert "no class has the join code NOPE2345; check it with your instructor" in page
    assert not Membership.objects.exists()


def test_the_api_joins_with_201_then_200_and_keeps_one_membership(instructor, student_user):
    classroom = make_class(instructor)
    client = logged_in(student_user)
    first = join_api(client, classroom.join_code)
    assert first.status_code == 201
    assert first.json() == {
        "class": {"id": classroom.pk, "name": classroom.name, "url": f"/classes/{classroom.pk}/"},
        "joined": True,
    }
    again = join_api(client, classroom.join_code.lower())
    assert again.status_code == 200 and again.json()["joined"] is False
    assert Membership.objects.filter(classroom=classroom, user=student_user).count() == 1


def test_the_api_answers_a_wrong_or_missing_code_with_400_and_a_field_error(student_user):
    client = logged_in(student_user)
    wrong = join_api(client, "WRONG234")
    assert wrong.status_code == 400
    assert "no class has the join code WRONG234" in wrong.json()["code"][0]
    missing = client.post("/api/classes/join/", {}, content_type="application/json")
    assert missing.status_code == 400 and missing.json()["code"] == ["This field is required."]
    assert join_api(client, "   ").status_code == 400


def test_it_refuses_every_code_after_ten_wrong_ones_within_the_hour(instructor, student_user, other_student):
    classroom = make_class(instructor)
    client = logged_in(student_user)
    for i in range(JOIN_FAILURES_PER_HOUR):
        assert join_api(client, f"WRONG{i:03d}").status_code == 400
    # The right code is refused too: otherwise guessing would go on, told apart by the answers.
    refused = join_api(client, classroom.join_code)
    assert refused.status_code == 429
    assert "too many wrong join codes (10 in the last hour)" in refused.json()["detail"]
    page = logged_in(student_user).post("/classes/join/", {"code": classroom.join_code})
    assert page.status_code == 429 and "too many wrong join codes" in page.content.decode()
    assert not classroom.has_member(student_user)
    # Another student's guesses are their own.
    assert join_api(logged_in(other_student), classroom.join_code).status_code == 201
    # An hour on, the student may try again.
    FailedJoin.objects.filter(user=student_user).update(at=timezone.now() - timedelta(hours=1, seconds=1))
    assert join_api(client, classroom.join_code).status_code == 201


def test_the_home_page_offers_students_a_join_form_and_lists_their_classes(instructor, student_user):
    classroom = make_class(instructor, students=[student_user])
    home = logged_in(student_user).get("/").content.decode()
    assert 'data-testid="join-form"' in home and 'action="/classes/join/"' in home
    assert f'href="/classes/{classroom.pk}/"' in home
    assert 'data-testid="join-form"' not in logged_in(instructor).get("/").content.decode()


def test_the_classes_page_lists_a_students_classes_with_all_their_students(instructor, student_user, other_student):
    classroom = make_class(instructor, students=[student_user, other_student])
    make_class(instructor, name="Not hers")
    response = logged_in(student_user).get("/classes/")
    assert [(c.name, teaches, c.student_count) for c, teaches in response.context["classes"]] == [
        (classroom.name, False, 2)
    ]
    assert "Not hers" not in response.content.decode()


# The class page --------------------------------------------------------------------------------


def test_the_class_page_shows_members_sheets_and_runs_shared_with_the_class(instructor, student_user):
    classroom = make_class(instructor, students=[student_user])
    Assignment.objects.create(classroom=classroom, sheet="transactions/two-phase-commit", position=1)
    run = ping_run(instructor)
    SharedRun.objects.create(classroom=classroom, run=run, shared_by=instructor)
    page = logged_in(student_user).get(f"/classes/{classroom.pk}/").content.decode()
    assert "You are a student of this class." in page
    assert "charlie" in page and "alice" in page
    assert 'href="/sheets/transactions/two-phase-commit/"' in page
    assert f'href="/runs/{run.pk}/"' in page
    # A student sees neither the code nor the buttons that manage the class.
    assert classroom.join_code not in page
    assert 'data-testid="regenerate-code"' not in page and "Remove" not in page


def test_a_student_gets_404_for_a_class_they_are_not_in(instructor, student_user, other_student):
    mine = make_class(instructor, students=[student_user])
    theirs = make_class(instructor, name="Another class", students=[other_student])
    client = logged_in(student_user)
    assert client.get(f"/classes/{mine.pk}/").status_code == 200
    assert client.get(f"/classes/{theirs.pk}/").status_code == 404
    assert client.get("/classes/999999/").status_code == 404
    assert client.post(f"/classes/{theirs.pk}/code/").status_code == 404
    assert "Another class" not in client.get("/classes/").content.decode()


def test_staff_open_every_class_page_and_are_told_why(instructor, dana, other_student):
    theirs = make_class(dana, name="Dana's class", students=[other_student])
    page = logged_in(instructor).get(f"/classes/{theirs.pk}/").content.decode()
    assert "staff administer every class" in page
    assert "bob" in page
    assert "Dana&#x27;s class" in logged_in(instructor).get("/classes/").content.decode()


def test_an_instructor_regenerates_the_code_and_the_old_one_stops_working(instructor, student_user, other_student):
    classroom = make_class(instructor, students=[student_user])
    old = classroom.join_code
    assert logged_in(student_user).post(f"/classes/{classroom.pk}/code/").status_code == 403
    response = logged_in(instructor).post(f"/classes/{classroom.pk}/code/")
    assert response.status_code == 302
    classroom.refresh_from_db()
    assert classroom.join_code != old
    assert join_api(logged_in(other_student), old).status_code == 400
    assert join_api(logged_in(other_student), classroom.join_code).status_code == 201


def test_regenerating_a_code_wants_the_forms_csrf_token(instructor):
    classroom = make_class(instructor)
    old = classroom.join_code
    client = logged_in(instructor, enforce_csrf_checks=True)
    assert client.post(f"/classes/{classroom.pk}/code/").status_code == 403
    classroom.refresh_from_db()
    assert classroom.join_code == old
    assert client.get(f"/classes/{classroom.pk}/code/").status_code == 405


def test_an_instructor_removes_a_student_who_then_no_longer_sees_the_shared_runs(instructor, student_user):
    classroom = make_class(instructor, students=[student_user])
    run = ping_run(instructor)
    SharedRun.objects.create(classroom=classroom, run=run, shared_by=instructor)
    student = logged_in(student_user)
    assert student.get(f"/runs/{run.pk}/").status_code == 200
    assert student.post(f"/classes/{classroom.pk}/remove/", {"user": student_user.pk}).status_code == 403
    response = logged_in(instructor).post(f"/classes/{classroom.pk}/remove/", {"user": student_user.pk})
    assert response.status_code == 302
    assert not classroom.has_member(student_user)
    assert student.get(f"/runs/{run.pk}/").status_code == 404
    assert student.get(f"/classes/{classroom.pk}/").status_code == 404


# Sharing ---------------------------------------------------------------------------------------


def test_an_instructor_shares_a_run_with_their_class_through_the_api(instructor, student_user, other_student):
    classroom = make_class(instructor, students=[student_user])
    run = ping_run(other_student)
    client = logged_in(instructor)
    response = client.post(f"/api/classes/{classroom.pk}/share/", {"run": run.pk}, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["created"] is True and response.json()["run"] == run.pk
    assert SharedRun.objects.get(classroom=classroom, run=run).shared_by == instructor
    again = client.post(f"/api/classes/{classroom.pk}/share/", {"run": run.pk}, content_type="application/json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert logged_in(student_user).get(f"/api/runs/{run.pk}/").status_code == 200


def test_only_the_classes_instructors_share_with_it(instructor, dana, student_user):
    classroom = make_class(instructor, students=[student_user])
    own = ping_run(student_user)
    body = {"run": own.pk}
    student = logged_in(student_user).post(f"/api/classes/{classroom.pk}/share/", body, content_type="application/json")
    assert student.status_code == 403
    assert student.json() == {"detail": "only the class's instructors share runs with it"}
    # Dana is staff, so sees the class, but does not teach it.
    staff = logged_in(dana).post(f"/api/classes/{classroom.pk}/share/", body, content_type="application/json")
    assert staff.status_code == 403
    assert not SharedRun.objects.exists()


def test_sharing_answers_bad_input_with_field_errors(instructor):
    classroom = make_class(instructor)
    client = logged_in(instructor)
    url = f"/api/classes/{classroom.pk}/share/"
    assert client.post(url, {"run": "seven"}, content_type="application/json").json() == {
        "run": ["A valid integer is required."]
    }
    missing = client.post(url, {"run": 999999}, content_type="application/json")
    assert missing.status_code == 400 and missing.json() == {"run": ["no run #999999 that you may see"]}
    assert client.post("/api/classes/999999/share/", {"run": 1}, content_type="application/json").status_code == 404


def test_the_run_page_offers_share_with_class_to_its_instructors_only(instructor, student_user):
    classroom = make_class(instructor, students=[student_user])
    run = ping_run(student_user)
    teacher = logged_in(instructor)
    page = teacher.get(f"/runs/{run.pk}/").content.decode()
    assert "Share with class" in page and f'<option value="{classroom.pk}">Distributed systems</option>' in page
    assert "Share with class" not in logged_in(student_user).get(f"/runs/{run.pk}/").content.decode()
    response = teacher.post("/classes/share/", {"run": run.pk, "classroom": classroom.pk})
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert SharedRun.objects.filter(classroom=classroom, run=run).exists()
    page = teacher.get(f"/runs/{run.pk}/").content.decode()
    assert f"Run #{run.pk} is now shared with Distributed systems" in page
    share_box = page[page.index('data-testid="run-share"') :]
    assert f'<a href="/classes/{classroom.pk}/">Distributed systems</a>' in share_box.split("</section>")[0]


def test_the_run_list_marks_the_runs_shared_with_the_students_class(instructor, student_user):
    classroom = make_class(instructor, students=[student_user])
    own = ping_run(student_user)
    shown = ping_run(instructor)
    SharedRun.objects.create(classroom=classroom, run=shown, shared_by=instructor)
    page = logged_in(student_user).get("/runs/").content.decode()
    assert f'href="/runs/{own.pk}/"' in page and f'href="/runs/{shown.pk}/"' in page
    assert page.count('data-testid="shared-mark"') == 1
    assert "shared with Distributed systems" in page


# Admin and demo data ---------------------------------------------------------------------------


@pytest.fixture
def admin_client(django_user_model):
    admin = django_user_model.objects.create_superuser("eve", password="labdemo-eve-pw")
    return logged_in(admin), admin


def test_a_class_made_in_the_admin_is_taught_by_whoever_made_it(admin_client):
    client, admin = admin_client
    form = {
        "name": "Admin-made class",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "assignments-TOTAL_FORMS": "0",
        "assignments-INITIAL_FORMS": "0",
    }
    response = client.post("/admin/classroom/classroom/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    classroom = Classroom.objects.get(name="Admin-made class")
    assert list(classroom.instructors.all()) == [admin]


def test_the_admin_refuses_an_assignment_of_a_sheet_that_is_not_named_lab_slash_file(admin_client):
    client, _ = admin_client
    form = {
        "name": "With sheets",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "assignments-TOTAL_FORMS": "1",
        "assignments-INITIAL_FORMS": "0",
        "assignments-0-sheet": "no-such-sheet",
        "assignments-0-position": "0",
    }
    response = client.post("/admin/classroom/classroom/add/", form)
    assert response.status_code == 200
    assert not Classroom.objects.exists()


def test_the_admin_lists_classes_members_shares_and_progress(admin_client, instructor, student_user):
    client, _ = admin_client
    classroom = make_class(instructor, students=[student_user])
    SharedRun.objects.create(classroom=classroom, run=ping_run(instructor), shared_by=instructor)
    for url in (
        "/admin/classroom/classroom/",
        f"/admin/classroom/classroom/{classroom.pk}/change/",
        "/admin/classroom/membership/",
        "/admin/classroom/sharedrun/",
        "/admin/classroom/presentation/",
        f"/admin/classroom/checkpointpass/?classroom={classroom.pk}",
        "/admin/classroom/answer/?q=alice",
        "/admin/classroom/failedjoin/",
    ):
        assert client.get(url).status_code == 200, url
    change = client.get(f"/admin/classroom/classroom/{classroom.pk}/change/").content.decode()
    assert classroom.join_code in change and "alice" in change


def test_seed_demo_makes_a_demo_class_taught_by_instructor_with_student_in_it(settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")  # twice is fine: the demo data is reset, not doubled
    classroom = Classroom.objects.get(name="Demo class")
    assert list(classroom.instructors.values_list("username", flat=True)) == ["instructor"]
    assert list(classroom.memberships.values_list("user__username", flat=True)) == ["student"]
