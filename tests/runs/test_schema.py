"""`manage.py lab` before the control database is ready: one line saying what to do, no traceback."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import ROOT, free_port, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def lab_against(database_url, *args):
    return subprocess.run(
        [sys.executable, "manage.py", "lab", *args],
        cwd=ROOT,
        env=subprocess_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def empty_database():
    """A control database that exists and has no tables, as on a fresh checkout before migrate."""
    db = settings.DATABASES["default"]
    name = f"{connection.settings_dict['NAME']}_noschema"  # within the test account's grant
    with connection.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    yield f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{name}"
    with connection.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_lab_run_on_an_unmigrated_database_says_to_run_make_services_in_one_line(empty_database):
    out = lab_against(empty_database, "run", "diagnostics", "ping")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "no tables yet" in out.stderr and "make services" in out.stderr and "migrate" in out.stderr


def test_lab_run_with_no_control_database_running_says_so_in_one_line():
    port = free_port()  # nothing listens there
    out = lab_against(f"mysql://distlab:distlab@127.0.0.1:{port}/distlab", "run", "diagnostics", "ping")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"CommandError: the control database at 127.0.0.1:{port} does not answer: start it with `make services`, "
        "or point DATABASE_URL at yours"
    )
