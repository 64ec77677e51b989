"""Every locks scenario narrates itself: a line of what to watch, and captions that each meet an
event of a real run of the scenario, one caption to an event."""

import pytest

from tests.locks.lab_runs import RUNS


@pytest.mark.parametrize("name", list(RUNS.scenarios))
def test_it_narrates_each_scenario_with_captions_its_run_reaches(name, request):
    RUNS.check_narration(request, name)
