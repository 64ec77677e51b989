"""GET /api/runs/<id>/output/: a MapReduce run's whole output as `key<TAB>value` lines sorted by
key, kept when its job is over (after the run's Redis keys are dropped), for its owner and staff."""

from collections import Counter

import pytest
import redis

from apps.mapreduce.engine import corpus
from apps.mapreduce.engine.jobs import WORD
from apps.runs.models import Run
from apps.runs.registry import get_scenario
from apps.runs.runner import execute
from tests.conftest import lab_node_urls

pytestmark = pytest.mark.django_db(transaction=True)

PARAMS = {"size_limit": 300_000, "maps": 3, "reduces": 3}


def url(run):
    return f"/api/runs/{run.pk}/output/"


def finished_word_count(owner):
    params, _ = get_scenario("mapreduce", "wordcount").validate(PARAMS)
    run = Run.objects.create(owner=owner, lab="mapreduce", scenario="wordcount", params=params, seed=2)
    execute(run.pk, broadcast=False)
    run.refresh_from_db()
    assert (run.status, run.verdict) == ("done", "pass"), (run.failure_reason, run.invariants)
    return run


def lines(response):
    return b"".join(response.streaming_content).decode().splitlines()


def test_the_owner_downloads_the_whole_output_sorted_by_key_after_the_run_ended(
    mapreduce_workers, client, student_user
):
    run = finished_word_count(student_user)
    lab = redis.Redis.from_url(lab_node_urls()["redis_url"])
    try:
        assert list(lab.scan_iter(match=f"run{run.pk}:*")) == []  # the run's keys are gone
    finally:
        lab.close()

    client.force_login(student_user)
    response = client.get(url(run))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/tab-separated-values; charset=utf-8"
    assert f'filename="run{run.pk}-wordcount-output.tsv"' in response["Content-Disposition"]
    rows = [line.split("\t") for line in lines(response)]
    keys = [key for key, _ in rows]
    assert keys == sorted(keys)
    # Every word of the input, counted: the same as counting the documents here.
    expected = Counter()
    for _, text in corpus.documents("licenses", size_limit=PARAMS["size_limit"], seed=2):
        expected.update(WORD.findall(text.lower()))
    assert {key: int(value) for key, value in rows} == dict(expected)


def test_another_user_gets_404_and_staff_get_the_output(
    mapreduce_workers, client, student_user, other_student, instructor
):
    run = finished_word_count(student_user)
    client.force_login(other_student)
    assert client.get(url(run)).status_code == 404
    client.force_login(instructor)
    response = client.get(url(run))
    assert response.status_code == 200 and lines(response)
    client.logout()
    assert client.get(url(run)).status_code == 401


def test_a_run_whose_job_is_not_over_has_no_output_yet(client, student_user):
    run = Run.objects.create(owner=student_user, lab="mapreduce", scenario="wordcount", params={}, seed=1)
    client.force_login(student_user)
    response = client.get(url(run))
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"run {run.pk} has no output: it is kept when the job is over, and this run's is queued"
    }


def test_a_run_of_another_lab_has_no_output(client, student_user):
    run = Run.objects.create(owner=student_user, lab="locks", scenario="redis-lease", params={}, seed=1)
    client.force_login(student_user)
    assert client.get(url(run)).status_code == 404
