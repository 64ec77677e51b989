"""Every panel of every lab's run page shows something: a student starts a run of each lab from its
lab page and, once the checker has judged it, finds the nodes laid out with no box on another and no
line through a box, the space-time diagram drawn and fitting the panel, commands in the log, charts
or values, and the verdict with its invariants."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SLOW, log_in, wait_for_the_end_event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The geometry of the node diagram in its own coordinates: each box, and the lines that cross a box
# other than the two they join (sampled along each drawn path).
NODE_GEOMETRY = """() => {
  const boxes = [...document.querySelectorAll('#nodes g[data-node]')].map((g) => {
    const m = g.transform.baseVal.consolidate().matrix;
    const r = g.querySelector('rect');
    return {name: g.dataset.node, x: m.e, y: m.f, w: r.width.baseVal.value, h: r.height.baseVal.value};
  });
  const inside = (b, x, y) => x > b.x + 1 && x < b.x + b.w - 1 && y > b.y + 1 && y < b.y + b.h - 1;
  const crossings = [];
  const links = document.querySelectorAll('#nodes path.link');
  for (const path of links) {
    const ends = path.dataset.link.split(' ');
    const length = path.getTotalLength();
    for (let i = 1; i < 50; i++) {
      const p = path.getPointAtLength((length * i) / 50);
      const hit = boxes.find((b) => !ends.includes(b.name) && inside(b, p.x, p.y));
      if (hit) { crossings.push(`${path.dataset.link} crosses ${hit.name}`); break; }
    }
  }
  return {boxes, crossings, links: links.length};
}"""

# Each Plotly chart: its axis titles, how many points its longest line has, whether its x values are
# all whole numbers, and the x tick labels it shows.
CHARTS = """() => [...document.querySelectorAll('#charts .chart__plot')].map((plot) => ({
  xtitle: plot.querySelector('.xtitle')?.textContent || '',
  ytitle: plot.querySelector('.ytitle')?.textContent || '',
  points: Math.max(...plot.data.map((t) => t.x.length)),
  wholeX: plot.data.every((t) => t.x.every(Number.isInteger)),
  xticks: [...plot.querySelectorAll('.xtick text')].map((t) => t.textContent),
}))"""

RUNS = [
    ("diagnostics", "ping", {"rounds": "3"}),
    ("transactions", "2pc-happy", {"transfers": "3"}),
    ("locks", "redis-lease", {"clients": "3", "operations": "2"}),
    ("locks", "zk-lock", {"clients": "3", "operations": "1"}),
    ("mapreduce", "wordcount", {"maps": "4", "reduces": "2"}),
]


def overlapping(boxes):
    return [
        (a["name"], b["name"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    ]


@pytest.mark.parametrize("lab, scenario, params", RUNS, ids=[f"{lab}-{s}" for lab, s, _ in RUNS])
def test_no_panel_of_a_finished_run_is_left_empty(
    live_stack, student_user, browser_page, request, lab, scenario, params
):
    if lab == "mapreduce":
        request.getfixturevalue("mapreduce_workers")
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/labs/{lab}/")
    form = page.get_by_test_id(f"run-form-{scenario}")
    for name, value in params.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("select[name=speed]").select_option("0")
    form.get_by_test_id(f"run-{scenario}").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-verdict", "pass", timeout=SLOW)
    wait_for_the_end_event(page)

    # Nodes: several, each box clear of the others, and no line drawn through a third node's box.
    geometry = page.evaluate(NODE_GEOMETRY)
    assert len(geometry["boxes"]) >= 2
    assert overlapping(geometry["boxes"]) == []
    assert geometry["links"] >= 1
    assert geometry["crossings"] == []
    # Boxes in more than one column: clients and servers are not stacked in a single file.
    assert len({box["x"] for box in geometry["boxes"]}) >= 2

    # The space-time diagram has arrows, and its lanes fit the panel's width.
    assert page.locator("#lamport .row--msg .arrow__line").count() >= 2
    fits = page.evaluate(
        "() => { const s = document.getElementById('lamport'); return s.scrollWidth <= s.clientWidth + 1; }"
    )
    assert fits

    # Commands in the log; a chart or a value in the charts panel, whose "nothing yet" note is gone.
    assert page.locator("#cmdlog [data-testid=cmd-row]").count() >= 1
    assert page.locator("#charts .chart, #counters .counter").count() >= 1
    expect(page.locator("#charts-empty")).to_be_hidden()
    # Each chart is a line of several points with both axes titled; rounds and counts tick in
    # whole numbers (a single value is shown as a value, not as a one-point chart).
    for chart in page.evaluate(CHARTS):
        assert chart["points"] >= 2
        assert chart["xtitle"] and chart["ytitle"]
        # A count on the x axis says what it counts (round, transfer, clients), not "sample".
        assert chart["xtitle"] != "sample", chart
        if chart["wholeX"]:
            assert all(re.fullmatch(r"-?[\d,]+", tick) for tick in chart["xticks"]), chart["xticks"]

    # Every invariant judged, and every lab panel with something in it.
    invariants = page.get_by_test_id("invariants").locator("[data-invariant]")
    assert invariants.count() >= 1
    expect(invariants.and_(page.locator("[data-held=pending]"))).to_have_count(0)
    # Opened, the evidence wraps inside the verdict panel instead of running off it.
    wrapped = page.evaluate(
        """() => [...document.querySelectorAll('#invariants details.evidence')].map((d) => {
             d.open = true; const pre = d.querySelector('pre'); return pre.scrollWidth <= pre.clientWidth + 1; })"""
    )
    assert wrapped and all(wrapped)
    for panel in page.locator("#lab-panels > section").all():
        assert panel.inner_text().strip() != panel.locator("h2").inner_text().strip()

    assert page.errors == []
