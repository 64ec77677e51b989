"""A MapReduce run the way the default worker runs it: recorded in the control database, checked,
and nothing of it left in the lab Redis afterwards."""

import pytest
import redis

from apps.runs.models import Event, Run
from apps.runs.registry import get_scenario
from apps.runs.runner import execute
from tests.conftest import lab_node_urls

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_recorded_run_passes_and_leaves_no_keys_in_the_lab_redis(mapreduce_workers):
    params, _ = get_scenario("mapreduce", "wordcount").validate({"size_limit": 1_000_000, "maps": 3, "reduces": 2})
    run = Run.objects.create(lab="mapreduce", scenario="wordcount", params=params, seed=5, expected="pass")
    execute(run.pk, broadcast=False)
    run.refresh_from_db()
    assert (run.status, run.verdict) == ("done", "pass"), (run.failure_reason, run.invariants)
    kinds = set(Event.objects.filter(run=run).values_list("kind", flat=True))
    assert {"phase", "state", "msg", "metric", "check", "end"} <= kinds
    lab = redis.Redis.from_url(lab_node_urls()["redis_url"])
    try:
        assert list(lab.scan_iter(match=f"run{run.pk}:*")) == []
    finally:
        lab.close()
