"""Narration as the server states it: Caption.matches, the rule the run page's narration.js mirrors,
and the watch line and captions the run page and the lab page are given."""

import json
import re

import pytest
from django.test import Client
from django.utils.html import escape

from apps.runs.models import Run
from apps.runs.registry import LABS, Caption

pytestmark = pytest.mark.django_db

EVENT = {
    "seq": 56,
    "kind": "log",
    "actor": "coordinator",
    "label": "decision logged: commit r4-t1",
    "data": {"decision": "commit", "gtrid": "r4-t1", "participants": ["p1", "p2"], "held": True},
}


@pytest.mark.parametrize(
    "caption",
    [
        Caption("any log", "log"),
        Caption("a label's part", "log", "decision logged"),
        Caption("the actor", "log", actor="coordinator"),
        Caption("a data item", "log", data={"decision": "commit"}),
        Caption("a list in the data", "log", data={"participants": ["p1", "p2"]}),
        Caption("everything", "log", "commit", actor="coordinator", data={"decision": "commit", "gtrid": "r4-t1"}),
    ],
    ids=lambda c: c.text,
)
def test_it_matches_an_event_of_the_kind_whose_label_actor_and_data_agree(caption):
    assert caption.matches(EVENT)


@pytest.mark.parametrize(
    "caption",
    [
        Caption("another kind", "msg"),
        Caption("a label not in it", "log", "decision logged: abort"),
        Caption("labels are case-sensitive", "log", "Decision"),
        Caption("another actor", "log", actor="recovery"),
        Caption("another value", "log", data={"decision": "abort"}),
        Caption("a key the event lacks", "log", data={"point": "mid-commit"}),
        Caption("part of a list", "log", data={"participants": ["p1"]}),
    ],
    ids=lambda c: c.text,
)
def test_it_does_not_match_an_event_that_differs_in_any_of_them(caption):
    assert not caption.matches(EVENT)


def test_it_matches_an_event_with_no_label_or_data_only_when_the_caption_asks_for_neither():
    bare = {"seq": 1, "kind": "end", "actor": "checker"}
    assert Caption("the end", "end").matches(bare)
    assert not Caption("a label", "end", "done").matches(bare)
    assert not Caption("data", "end", data={"verdict": "pass"}).matches(bare)


def run_page_json(user, run):
    client = Client()
    client.force_login(user)
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    found = re.search(r'<script id="run-page" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    return json.loads(found.group(1)), response.content.decode()


def test_it_gives_the_run_page_the_scenarios_watch_line_and_captions(student_user):
    run = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", params={"rounds": 2}, seed=1)
    page, html = run_page_json(student_user, run)
    scenario = LABS["diagnostics"].scenarios["ping"]
    assert page["watch"] == scenario.watch and page["watch"]
    assert page["captions"] == [c.describe() for c in scenario.captions]
    assert {"text", "kind", "label", "actor", "data"} <= set(page["captions"][0])
    assert 'data-testid="narration"' in html and 'data-testid="copy-moment"' in html


def test_it_gives_a_run_of_a_scenario_that_no_longer_exists_no_narration(student_user):
    run = Run.objects.create(owner=student_user, lab="diagnostics", scenario="gone", params={}, seed=1)
    page, _ = run_page_json(student_user, run)
    assert page["watch"] == "" and page["captions"] == []


def test_it_shows_each_scenarios_watch_line_on_the_lab_page(student_user):
    client = Client()
    client.force_login(student_user)
    html = client.get("/labs/transactions/").content.decode()
    # The box holds the line alone, escaped like any other text: it says "Watch ..." itself, with no
    # label saying it again.
    for scenario in LABS["transactions"].scenarios.values():
        assert f'data-testid="watch-{scenario.name}">{escape(scenario.watch)}</p>' in html
    assert "What to watch" not in html
