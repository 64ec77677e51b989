"""Every diagnostics scenario narrates itself: a line of what to watch, and captions that each meet an
event of a real run of the scenario at its defaults, one caption to an event."""

import pytest

from apps.runs.registry import LABS
from tests.diagnostics.lab_runs import recorded

SCENARIOS = LABS["diagnostics"].scenarios


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_it_narrates_each_scenario_with_captions_its_run_reaches(name, request):
    scenario = SCENARIOS[name]
    assert scenario.watch.strip(), f"{name} says nothing to watch"
    assert 4 <= len(scenario.captions) <= 10
    assert all(len(c.text) <= 140 for c in scenario.captions), "a caption is one short sentence"
    supervisor = request.getfixturevalue("supervisor") if scenario.cluster else None
    events = recorded(name, None, supervisor).events
    missed = [c.text for c in scenario.captions if not any(c.matches(e) for e in events)]
    assert not missed, f"captions no event of the run matches: {missed}"
    # The page shows the caption of the latest matching event: two captions on one event would
    # leave it to chance which one is read.
    doubled = [(e["seq"], e["label"]) for e in events if sum(c.matches(e) for c in scenario.captions) > 1]
    assert not doubled, f"events more than one caption matches: {doubled}"
