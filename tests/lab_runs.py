"""A lab's scenarios run once per set of parameters and kept for the test session, and the checks
every lab's narration test and sheet test make of them. The two tests judge the same runs, so each
run is paid for once."""

import os
from typing import NamedTuple

from apps.classroom.sheets import get_sheet
from apps.cluster.runnodes import DedicatedNodes
from apps.runs.registry import LABS, get_scenario, verdict_of
from tests.conftest import lab_node_urls
from tests.engine import run_engine


class Recorded(NamedTuple):
    params: dict  # clean, as the run stored them
    verdict: str
    events: list


# Every lab's runs, by (lab, scenario, parameters, seed): kept for the whole session, whichever
# test module asked first.
_recorded = {}


class LabRuns:
    """The runs of one lab's scenarios.

    `narrated`: the parameters a scenario's narration is checked at, where they are not its
    defaults. `seed`: the seed of every run. `captions`: how few and how many captions a scenario
    may have."""

    def __init__(self, lab, narrated=None, seed=7, captions=(4, 10)):
        self.lab = lab
        self.narrated = narrated or {}
        self.seed = seed
        self.captions = captions
        self.sheet_slug = f"{lab}/{lab}"

    @property
    def scenarios(self):
        return LABS[self.lab].scenarios

    def run(self, request, name, params=None):
        """The run of scenario `name` with `params` (None: its defaults). A scenario on nodes of its
        own starts them with the test module's node supervisor."""
        key = (self.lab, name, tuple(sorted((params or {}).items())), self.seed)
        if key not in _recorded:
            scenario = get_scenario(self.lab, name)
            nodes = None
            if scenario.cluster:
                supervisor = request.getfixturevalue("supervisor")

                def nodes(run_id, emit):
                    return DedicatedNodes.start(run_id, supervisor, scenario.cluster, emit=emit, owner_pid=os.getpid())

            urls = None if nodes else lab_node_urls()
            ctx, _result, checks, events = run_engine(scenario, urls, params, seed=self.seed, nodes=nodes)
            _recorded[key] = Recorded(ctx.params, verdict_of(checks), events)
        return _recorded[key]

    def check_narration(self, request, name):
        """Scenario `name` narrates itself: a line of what to watch, and short captions that each
        meet an event of a real run of it, one caption to an event."""
        scenario = self.scenarios[name]
        # The pages show the line with no label of "watch" of their own: it says it.
        assert scenario.watch.startswith("Watch "), f"{name}: the line of what to watch begins 'Watch '"
        fewest, most = self.captions
        assert fewest <= len(scenario.captions) <= most, f"{name}: {len(scenario.captions)} captions"
        long = [c.text for c in scenario.captions if len(c.text) > 140]
        assert not long, f"{name}: a caption is one short sentence: {long}"
        run = self.run(request, name, self.narrated.get(name))
        assert run.verdict == scenario.expected, f"{name}: the narrated run's verdict was {run.verdict}"
        missed = [c.text for c in scenario.captions if not any(c.matches(e) for e in run.events)]
        assert not missed, f"{name}: captions no event of the run matches: {missed}"
        # The page shows the caption of the latest matching event: two captions on one event would
        # leave it to chance which one is read.
        doubled = [(e["seq"], e["label"]) for e in run.events if sum(c.matches(e) for c in scenario.captions) > 1]
        assert not doubled, f"{name}: events more than one caption matches: {doubled}"

    def check_sheet(self, meeting, checkpoints=(6, 10)):
        """The lab's sheet parses into checkpoints, among them questions and exactly the run
        checkpoints `meeting` has parameters for, each of a scenario of the lab."""
        sheet = get_sheet(self.sheet_slug)
        assert sheet.lab == self.lab and sheet.title
        fewest, most = checkpoints
        assert fewest <= len(sheet.checkpoints) <= most, f"{len(sheet.checkpoints)} checkpoints"
        assert {c.id for c in sheet.runs} == set(meeting)
        assert sheet.questions, "the sheet asks no question"
        assert {c.scenario for c in sheet.runs} <= set(self.scenarios)

    def judge(self, request, checkpoint_id, params=None):
        """(met, reason) for the sheet's checkpoint judging a real run of its scenario with `params`."""
        cp = get_sheet(self.sheet_slug).checkpoint(checkpoint_id)
        run = self.run(request, cp.scenario, params)
        return cp.judge(self.lab, cp.scenario, run.params, run.verdict)

    def check_checkpoint(self, request, checkpoint_id, params=None):
        """The sheet's run checkpoint is passable: a real run with `params` that meet it passes it."""
        met, reason = self.judge(request, checkpoint_id, params)
        assert met, f"{checkpoint_id}: {reason}"
