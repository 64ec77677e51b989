"""Bad parameters of the cache lab (no keys, a TTL of 0, a read ratio above 1, a race with too
short a TTL to show it) are refused with a message per field, through the API and the CLI,
before anything runs."""

import subprocess
import sys

import pytest
from django.test import Client

from apps.runs.models import Run
from apps.runs.registry import get_scenario
from tests.conftest import ROOT, subprocess_env


def errors(scenario, **params):
    return get_scenario("cache", scenario).validate(params)[1]


def test_no_keys_a_ttl_of_0_and_a_read_ratio_above_1_are_refused():
    assert errors("cache-aside", keys=0) == {"keys": ["must be at least 1"]}
    assert errors("cache-aside", ttl_ms=0) == {"ttl_ms": ["must be at least 1"]}
    assert errors("cache-aside", read_ratio=1.5) == {"read_ratio": ["must be at most 1"]}
    assert errors("cache-aside", keys=1, ttl_ms=1, read_ratio=1) == {}


def test_the_races_refuse_what_would_hide_the_race():
    assert errors("stale-set-race", keys=0) == {"keys": ["must be at least 1"]}
    assert errors("stale-set-race", ttl_ms=0) == {"ttl_ms": ["must be at least 100"]}
    assert errors("leases", lease_ms=0) == {"lease_ms": ["must be at least 10"]}
    assert errors("double-delete", reader_ms=5) == {"reader_ms": ["must be at least 20"]}
    assert errors("update-vs-delete", keys=1) == {
        "keys": ["must be at least 2: half the keys update the cache, the other half delete it"]
    }
    # The races have no workload mix: a read ratio is not theirs to take.
    assert list(errors("stale-set-race", read_ratio=0.5)) == ["read_ratio"]


@pytest.mark.django_db
def test_the_api_answers_400_with_each_fields_message(student_user):
    client = Client()
    client.force_login(student_user)
    response = client.post(
        "/api/runs/",
        {"lab": "cache", "scenario": "cache-aside", "params": {"keys": 0, "ttl_ms": 0, "read_ratio": 1.5}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "params": {
            "keys": ["must be at least 1"],
            "ttl_ms": ["must be at least 1"],
            "read_ratio": ["must be at most 1"],
        }
    }
    assert Run.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "scenario, setting, message",
    [
        ("cache-aside", "keys=0", "params.keys: must be at least 1"),
        ("cache-aside", "ttl_ms=0", "params.ttl_ms: must be at least 1"),
        ("cache-aside", "read_ratio=1.5", "params.read_ratio: must be at most 1"),
        (
            "thundering-herd",
            "lock_ms=100",
            "params.lock_ms: must be longer than rebuild_ms (300): a lock that expires mid-rebuild lets a second client in",
        ),
        (
            "update-vs-delete",
            "keys=1",
            "params.keys: must be at least 2: half the keys update the cache, the other half delete it",
        ),
    ],
)
def test_the_cli_exits_2_with_one_line(scenario, setting, message):
    out = subprocess.run(
        [sys.executable, "manage.py", "lab", "run", "cache", scenario, "--set", setting],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.strip().splitlines() == [f"CommandError: {message}"]
    assert Run.objects.count() == 0
