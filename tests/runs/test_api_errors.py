"""Whatever goes wrong under /api/, a script or the page's fetch() gets JSON it can read: 404, 405,
400 and 500 alike; a seed is refused in the words a parameter is."""

import pytest
from django.test import Client
from django.urls import path

import labsite.urls
from apps.runs.models import Run
from tests.runs.test_params_fuzz import NOT_JSON, VALUES, messages_of

pytestmark = pytest.mark.django_db


def a_bug(request):
    raise RuntimeError("a bug in a view")


# This module is also the URLconf of the tests that need a view that fails.
urlpatterns = [path("api/bug/", a_bug), path("bug/", a_bug), *labsite.urls.urlpatterns]
handler400, handler403 = labsite.urls.handler400, labsite.urls.handler403
handler404, handler500 = labsite.urls.handler404, labsite.urls.handler500


def logged_in(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def start(client, **body):
    body.setdefault("lab", "diagnostics")
    body.setdefault("scenario", "ping")
    return client.post("/api/runs/", body, content_type="application/json")


def test_an_api_address_no_endpoint_answers_gets_a_json_404(student_user):
    for client in (logged_in(student_user), Client()):
        for method, address in (("get", "/api/runs/abc/"), ("post", "/api/runs/abc/"), ("get", "/api/nothing/here/")):
            response = getattr(client, method)(address)
            assert response.status_code == 404
            assert response["Content-Type"] == "application/json"
            assert response.json() == {"detail": f"no API endpoint at {address}"}


def test_an_api_address_without_its_slash_is_told_where_the_endpoint_is(student_user):
    response = logged_in(student_user).get("/api/runs")
    assert response.status_code == 404
    assert response.json() == {"detail": "no API endpoint at /api/runs; the address ends with a slash: /api/runs/"}


def test_a_run_that_is_not_there_and_a_wrong_method_answer_json(student_user):
    client = logged_in(student_user)
    assert client.get("/api/runs/999999/").json() == {"detail": "No Run matches the given query."}
    response = client.delete("/api/runs/")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


def test_the_rest_of_the_site_keeps_its_html_404(student_user):
    response = logged_in(student_user).get("/nowhere/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls(__name__)
def test_a_failing_api_view_answers_a_json_500_and_a_failing_page_an_html_one(student_user):
    client = logged_in(student_user)
    response = client.get("/api/bug/")
    assert response.status_code == 500
    assert response.json() == {"detail": "the server failed on this request; the error is logged"}
    response = client.get("/bug/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls(__name__)
def test_with_debug_on_a_failing_api_view_still_answers_json_and_a_failing_page_the_debug_page(
    student_user, settings, caplog
):
    settings.DEBUG = True
    client = logged_in(student_user)
    response = client.get("/api/bug/")
    assert response.status_code == 500
    assert response.json() == {"detail": "the server failed on this request; the error is logged"}
    assert "a bug in a view" in caplog.text  # the traceback is still logged
    response = client.get("/bug/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    # A missing run under /api/ is still a 404, not a 500.
    assert client.get("/api/runs/999999999/").status_code == 404


def test_a_body_over_the_size_limit_is_refused_in_json(student_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"lab": "diagnostics", "scenario": "ping", "params": {"rounds": "' + "9" * 20_000 + '"}}'
    response = logged_in(student_user).post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "the request body is too large"}


def test_a_bad_seed_is_refused_in_the_words_of_a_bad_parameter(student_user):
    client = logged_in(student_user)
    for value, message in (
        ("abc", "must be an integer"),
        (1.5, "must be an integer"),
        (True, "must be an integer"),
        ([7], "must be an integer"),
        (-1, "must be at least 0"),
        (2**62 + 1, "must be at most 4611686018427387904"),
    ):
        assert start(client, seed=value).json() == {"seed": [message]}, value
    infinite = '{"lab": "diagnostics", "scenario": "ping", "seed": 1e999}'
    response = client.post("/api/runs/", infinite, content_type="application/json")
    assert response.json() == {"seed": ["must be at most 4611686018427387904"]}
    # Told beside the parameters' errors, not instead of them, in the same words.
    assert start(client, seed="abc", params={"rounds": "abc"}).json() == {
        "params": {"rounds": ["must be an integer"]},
        "seed": ["must be an integer"],
    }
    assert Run.objects.count() == 0


def test_a_seed_as_text_or_null_starts_the_run(student_user):
    client = logged_in(student_user)
    assert Run.objects.get(pk=start(client, seed="12").json()["id"]).seed == 12
    assert isinstance(Run.objects.get(pk=start(client, seed=None).json()["id"]).seed, int)


@pytest.mark.parametrize("field", ["lab", "scenario", "params", "seed", "speed", "keep"])
def test_no_value_of_a_run_field_makes_the_server_fail(field, student_user, settings):
    settings.DISTLAB_RUN_QUOTA = 100_000
    client = logged_in(student_user)
    for raw in VALUES:
        # A repeated key's last value is the one read: this one replaces the lab or scenario.
        body = '{"lab": "diagnostics", "scenario": "ping", ' + f'"{field}": {raw}' + "}"
        response = client.post("/api/runs/", body, content_type="application/json")
        assert response.status_code in (201, 400), f"{field}={raw[:60]}: {response.status_code}"
        if response.status_code == 400:
            messages = messages_of(response.json())
            assert messages and all(isinstance(m, str) and m for m in messages), f"{field}={raw[:60]}"
    for raw in NOT_JSON:
        body = '{"lab": "diagnostics", "scenario": "ping", ' + f'"{field}": {raw}' + "}"
        assert client.post("/api/runs/", body, content_type="application/json").status_code == 400


def test_an_unknown_parameter_is_named_even_when_its_name_has_no_utf8_form(student_user):
    body = '{"lab": "diagnostics", "scenario": "ping", "params": {"\\ud800": 1}}'
    response = logged_in(student_user).post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"params": {"\\ud800": ["unknown parameter (known: rounds)"]}}
