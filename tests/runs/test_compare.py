"""The compare page: two runs side by side, for a signed-in user who may see both."""

import pytest
from django.test import Client

from apps.runs.models import Run

pytestmark = pytest.mark.django_db


def make_run(owner, scenario="ping", seed=7):
    return Run.objects.create(owner=owner, lab="diagnostics", scenario=scenario, seed=seed, expected="pass")


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_it_sends_anonymous_visitors_to_log_in(student_user):
    a, b = make_run(student_user), make_run(student_user)
    response = Client().get(f"/runs/compare/?a={a.pk}&b={b.pk}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_shows_both_runs_side_by_side_with_their_streams(student_user):
    a, b = make_run(student_user, seed=11), make_run(student_user, seed=11)
    response = logged_in(student_user).get(f"/runs/compare/?a={a.pk}&b={b.pk}")
    assert response.status_code == 200
    page = response.context["page"]
    assert [r["id"] for r in page["runs"]] == [a.pk, b.pk]
    assert [r["ws"] for r in page["runs"]] == [f"/ws/runs/{a.pk}/", f"/ws/runs/{b.pk}/"]
    assert page["runs"][0]["invariants"]  # the scenario's invariants, listed before the verdict
    body = response.content.decode()
    assert f'data-run="{a.pk}"' in body and f'data-run="{b.pk}"' in body
    assert "Same seed: yes (11)" in body
    assert "runs/js/compare.js" in body


def test_a_run_of_someone_else_is_not_found(student_user, other_student):
    mine, theirs = make_run(student_user), make_run(other_student)
    assert logged_in(student_user).get(f"/runs/compare/?a={mine.pk}&b={theirs.pk}").status_code == 404
    assert logged_in(student_user).get(f"/runs/compare/?a={mine.pk}&b=999999999").status_code == 404


def test_an_instructor_may_compare_anyones_runs(instructor, student_user, other_student):
    a, b = make_run(student_user), make_run(other_student)
    assert logged_in(instructor).get(f"/runs/compare/?a={a.pk}&b={b.pk}").status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a=abc&b=1", "a must be a run id (a positive whole number), not &#x27;abc&#x27;"),
        ("a=1", "b is missing"),
        ("a=-3&b=1", "a must be a run id"),
        ("", "a is missing"),
    ],
)
def test_a_bad_id_is_a_400_with_a_clear_message(student_user, query, message):
    response = logged_in(student_user).get(f"/runs/compare/?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_transactions_lab_page_offers_to_compare_2pc_and_3pc(student_user):
    body = logged_in(student_user).get("/labs/transactions/").content.decode()
    assert 'data-a="2pc-coordinator-crash-before-decision" data-b="3pc-coordinator-crash"' in body
    assert 'data-compare="/runs/compare/"' in body
    # One fault schedule for both: the coordinator crashes during the same transfer.
    assert 'data-param="crash_transfer"' in body
    assert "Compare 2PC and 3PC" not in logged_in(student_user).get("/labs/diagnostics/").content.decode()
