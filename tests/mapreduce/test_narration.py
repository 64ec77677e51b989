"""Every MapReduce scenario narrates itself: a line of what to watch, and captions that each meet
an event of a real run of the scenario on real workers, one caption to an event."""

import pytest

from tests.mapreduce.lab_runs import NARRATED, RUNS


def test_it_checks_the_narration_of_every_scenario():
    assert set(NARRATED) == set(RUNS.scenarios)


@pytest.mark.parametrize("name", list(RUNS.scenarios))
def test_it_narrates_each_scenario_with_captions_its_run_reaches(mapreduce_workers, name, request):
    RUNS.check_narration(request, name)
