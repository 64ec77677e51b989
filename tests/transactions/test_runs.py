"""Transactions runs the way a worker runs them: recorded in the control database, checked, and
cleaned up on the shared node."""

import pymysql
import pytest

from apps.runs.models import Event, Run
from apps.runs.nodes import mysql_params
from apps.runs.registry import get_scenario
from apps.runs.runner import execute
from tests.conftest import lab_node_urls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "scenario, verdict",
    [("2pc-coordinator-crash-before-decision", "pass"), ("2pc-no-log", "fail")],
)
def test_a_recorded_run_ends_with_the_expected_verdict_and_leaves_no_databases(scenario, verdict):
    params, _ = get_scenario("transactions", scenario).validate({})  # stored clean, as the API stores them
    run = Run.objects.create(lab="transactions", scenario=scenario, params=params, seed=11, expected=verdict)
    execute(run.pk, broadcast=False)
    run.refresh_from_db()
    assert (run.status, run.verdict, run.expected) == ("done", verdict, verdict), run.failure_reason
    kinds = set(Event.objects.filter(run=run).values_list("kind", flat=True))
    assert {"node", "msg", "cmd", "state", "phase", "metric", "op", "check", "end"} <= kinds
    conn = pymysql.connect(**mysql_params(lab_node_urls()["mariadb_url"]))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (f"run{run.pk}\\_%",))
            assert cur.fetchall() == ()
    finally:
        conn.close()
