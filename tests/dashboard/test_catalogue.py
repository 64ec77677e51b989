"""The catalogue as a student scans it: a short card per lab on the home page, a scenario index on
the lab pages, and comparing two runs of one lab from the run history."""

import re

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import Client

from apps.dashboard.templatetags.catalogue import inline_code, lead_sentence
from apps.runs.models import Run
from apps.runs.registry import LABS

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def make_run(owner, lab="diagnostics", scenario="ping"):
    return Run.objects.create(owner=owner, lab=lab, scenario=scenario, seed=7, expected="pass")


def card(body, lab):
    """The HTML of one lab's card on the home page."""
    match = re.search(rf'<article class="card lab-card" data-lab="{lab}".*?</article>', body, re.S)
    assert match, f"no card for {lab}"
    return match.group(0)


def test_it_gives_every_lab_a_card_with_one_line_and_its_scenarios_linked_with_their_verdicts(student_user):
    body = logged_in(student_user).get("/").content.decode()
    for lab in LABS.values():
        html = card(body, lab.name)
        teaches = re.search(r'data-testid="lab-teaches">(.*?)</p>', html, re.S).group(1)
        assert teaches.strip() and teaches.strip() != lab.explanation  # one line, not the paragraph
        for scenario in lab.scenarios.values():
            link = f'href="/labs/{lab.name}/#scenario-{scenario.name}"'
            assert link in html, f"{lab.name} card does not link {scenario.name}"
            item = html[html.index(link) :].split("</li>", 1)[0]
            assert f"tag--{scenario.expected}" in item


def test_it_keeps_the_full_explanation_one_click_away_with_code_shown_as_code(student_user):
    html = card(logged_in(student_user).get("/").content.decode(), "diagnostics")
    details = re.search(r"<details.*?</details>", html, re.S).group(0)
    assert "<code>ping</code>" in details and "<code>stream-load</code>" in details
    assert "`" not in html


def test_inline_code_escapes_the_text_before_marking_code():
    assert inline_code("run `a<b>` & `ping`") == "run <code>a&lt;b&gt;</code> &amp; <code>ping</code>"
    assert inline_code("<script>`x`") == "&lt;script&gt;<code>x</code>"


def test_the_lead_sentence_stops_at_the_first_sentence():
    assert lead_sentence("One line. Then more. And more.") == "One line."
    assert lead_sentence("Only one.") == "Only one."


def test_a_long_lab_page_opens_with_an_index_linking_every_scenario(student_user):
    body = logged_in(student_user).get("/labs/locks/").content.decode()
    index = re.search(r'<nav class="card scenario-index".*?</nav>', body, re.S).group(0)
    scenarios = LABS["locks"].scenarios.values()
    assert len(re.findall(r'href="#scenario-', index)) == len(scenarios)
    for scenario in scenarios:
        assert f'href="#scenario-{scenario.name}"' in index
        assert f'id="scenario-{scenario.name}"' in body  # where the link lands
    assert body.index("scenario-index") < body.index('id="scenario-lost-update"')


@pytest.mark.parametrize(
    ("lab", "said", "not_said"),
    [
        ("locks", "any client, c1 to cN (N = clients)", "c&lt;clients&gt;"),
        ("mapreduce", "any worker, w1 to wN (N = workers)", "w&lt;workers&gt;"),
    ],
)
def test_a_fault_on_numbered_nodes_is_said_for_people(student_user, lab, said, not_said):
    body = logged_in(student_user).get(f"/labs/{lab}/").content.decode()
    assert said in body
    assert not_said not in body


def test_compare_refuses_two_runs_of_different_labs_and_offers_a_pair_of_one_lab(student_user):
    ping, other_ping = make_run(student_user), make_run(student_user)
    lock = make_run(student_user, lab="locks", scenario="lost-update")
    response = logged_in(student_user).get(f"/runs/compare/?a={ping.pk}&b={lock.pk}")
    assert response.status_code == 400
    body = response.content.decode()
    assert (
        f"Run #{ping.pk} is a diagnostics run and run #{lock.pk} a locks run: "
        "only two runs of the same lab can be compared."
    ) in body
    assert "runs/js/compare.js" not in body  # no side-by-side streams of runs that cannot be set side by side
    picker = re.search(r'<form[^>]*data-testid="compare-pick".*?</form>', body, re.S).group(0)
    assert f'value="{ping.pk}" data-lab="diagnostics"' in picker
    assert f'value="{other_ping.pk}" data-lab="diagnostics"' in picker
    assert f'value="{lock.pk}"' not in picker  # the only locks run has nothing to be compared with


def test_the_compare_picker_groups_the_history_by_lab_and_opens_the_compare_page(student_user):
    runs = [make_run(student_user), make_run(student_user, lab="locks", scenario="lost-update")]
    runs += [make_run(student_user, lab="locks", scenario="optimistic"), make_run(student_user)]
    page = Paginator(Run.objects.order_by("-pk"), 50).get_page(1)
    html = render_to_string("runs/_compare_pick.html", {"runs": page.object_list})
    assert 'action="/runs/compare/"' in html and 'name="a"' in html and 'name="b"' in html
    groups = re.findall(r'<optgroup label="(\w+)">(.*?)</optgroup>', html, re.S)
    assert [lab for lab, _ in groups] == ["diagnostics", "locks", "diagnostics", "locks"]  # in a, then b
    diagnostics = re.findall(r'value="(\d+)"', groups[0][1])
    assert diagnostics == [str(runs[3].pk), str(runs[0].pk)]  # newest first


def test_the_compare_picker_steps_aside_when_no_lab_has_two_runs(student_user):
    make_run(student_user)
    page = Paginator(Run.objects.order_by("-pk"), 50).get_page(1)
    assert "compare-pick" not in render_to_string("runs/_compare_pick.html", {"runs": page.object_list})
