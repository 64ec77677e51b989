"""Every MapReduce scenario narrates itself: a line of what to watch, and captions that each meet
an event of a real run of the scenario on real workers, one caption to an event."""

import pytest

from apps.mapreduce.scenarios import LAB
from tests.mapreduce.lab_runs import NARRATED, recorded


def test_it_checks_the_narration_of_every_scenario():
    assert set(NARRATED) == set(LAB.scenarios)


@pytest.mark.parametrize("name", list(LAB.scenarios))
def test_it_narrates_each_scenario_with_captions_its_run_reaches(mapreduce_workers, name):
    scenario = LAB.scenarios[name]
    assert scenario.watch.strip(), f"{name} says nothing to watch"
    assert 4 <= len(scenario.captions) <= 10
    events = recorded(name, NARRATED[name]).events
    missed = [c.text for c in scenario.captions if not any(c.matches(e) for e in events)]
    assert not missed, f"captions no event of the run matches: {missed}"
    # The page shows the caption of the latest matching event: two captions on one event would
    # leave it to chance which one is read.
    doubled = [(e["seq"], e["label"]) for e in events if sum(c.matches(e) for c in scenario.captions) > 1]
    assert not doubled, f"events more than one caption matches: {doubled}"
