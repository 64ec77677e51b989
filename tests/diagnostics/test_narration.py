"""Every diagnostics scenario narrates itself: a line of what to watch, and captions that each meet an
event of a real run of the scenario at its defaults, one caption to an event."""

import pytest

from tests.lab_runs import LabRuns

RUNS = LabRuns("diagnostics")


@pytest.mark.parametrize("name", list(RUNS.scenarios))
def test_it_narrates_each_scenario_with_captions_its_run_reaches(name, request):
    RUNS.check_narration(request, name)
