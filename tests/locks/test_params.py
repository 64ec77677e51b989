"""Bad parameters of the locks lab are refused with a message per field, before anything runs."""

import pytest
from django.test import Client

from apps.runs.models import Run
from apps.runs.registry import get_scenario


def errors(scenario, **params):
    return get_scenario("locks", scenario).validate(params)[1]


def test_no_clients_no_ttl_and_more_hot_rows_than_rows_are_refused():
    assert errors("optimistic", clients=0) == {"clients": ["must be at least 1"]}
    assert errors("redis-lease", ttl_ms=0) == {"ttl_ms": ["must be at least 1"]}
    assert errors("pessimistic", rows=3, hot_rows=5) == {"hot_rows": ["more hot rows (5) than rows (3): at most 3"]}
    assert errors("redis-lease-pause", ttl_ms=500, pause_ms=400) == {
        "pause_ms": ["must be longer than ttl_ms (500) for the lease to expire during the pause"]
    }
    assert errors("optimistic-vs-pessimistic", rows=4, hot_rows=4) == {}


@pytest.mark.django_db
def test_the_api_answers_400_with_the_field(student_user):
    client = Client()
    client.force_login(student_user)
    response = client.post(
        "/api/runs/",
        {"lab": "locks", "scenario": "pessimistic", "params": {"rows": 2, "hot_rows": 3}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"params": {"hot_rows": ["more hot rows (3) than rows (2): at most 2"]}}
    response = client.post(
        "/api/runs/",
        {"lab": "locks", "scenario": "redis-lease", "params": {"clients": 0, "ttl_ms": 0}},
        content_type="application/json",
    )
    assert response.json() == {"params": {"clients": ["must be at least 1"], "ttl_ms": ["must be at least 1"]}}
    assert Run.objects.count() == 0
