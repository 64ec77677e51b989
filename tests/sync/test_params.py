"""Bad parameters of the sync lab (no rows, a negative rate, chunks of no rows) are refused with a
message per field, through the API and the CLI, before anything runs."""

import subprocess
import sys

import pytest
from django.test import Client

from apps.runs.models import Run
from apps.runs.registry import get_scenario
from tests.conftest import ROOT, subprocess_env


def errors(scenario, **params):
    return get_scenario("sync", scenario).validate(params)[1]


def test_no_rows_a_negative_rate_and_an_empty_chunk_are_refused():
    assert errors("naive-latest", rows=0) == {"rows": ["must be at least 1"]}
    assert errors("incremental-timestamp", rate=-1) == {"rate": ["must be at least 0"]}
    assert errors("checksum-repair", chunk=0) == {"chunk": ["must be at least 1"]}
    assert errors("checksum-repair", rows=1, rate=0, chunk=1) == {}


@pytest.mark.django_db
def test_the_api_answers_400_with_each_fields_message(student_user):
    client = Client()
    client.force_login(student_user)
    response = client.post(
        "/api/runs/",
        {"lab": "sync", "scenario": "checksum-repair", "params": {"rows": 0, "rate": -5, "chunk": 0}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "params": {
            "rows": ["must be at least 1"],
            "rate": ["must be at least 0"],
            "chunk": ["must be at least 1"],
        }
    }
    assert Run.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "setting, message",
    [
        ("rows=0", "params.rows: must be at least 1"),
        ("rate=-3", "params.rate: must be at least 0"),
        ("chunk=0", "params.chunk: must be at least 1"),
    ],
)
def test_the_cli_exits_2_with_one_line(setting, message):
    out = subprocess.run(
        [sys.executable, "manage.py", "lab", "run", "sync", "checksum-repair", "--set", setting],
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
