"""The MapReduce lab in a real browser, on real MapReduce workers: a finished word count's panel
(worker lanes, the Gantt timeline, the top words as a bar chart, the verdict), and a file uploaded
from the lab page becoming the run's input."""

import re

import pytest
from playwright.sync_api import expect

from apps.mapreduce.uploads import TOKEN_RE
from tests.browser.conftest import SLOW, log_in, wait_for_the_end_event

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SMALL = {"maps": "4", "reduces": "2"}


@pytest.fixture
def mapreduce_stack(live_stack, mapreduce_workers):
    return live_stack


def start_from_lab_page(page, scenario, params):
    form = page.get_by_test_id(f"run-form-{scenario}")
    for name, value in params.items():
        form.locator(f"[data-param={name}]").fill(value)
    form.locator("select[name=speed]").select_option("0")
    form.get_by_test_id(f"run-{scenario}").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"), timeout=SLOW)
    expect(page.get_by_test_id("verdict")).not_to_have_attribute("data-verdict", "", timeout=SLOW)
    wait_for_the_end_event(page)
    return page.get_by_test_id("panel-mapreduce")


def invariants(page):
    return {c["name"]: c["held"] for c in page.evaluate("distlab.events.at(-1).data.invariants")}


def test_a_finished_word_count_shows_worker_lanes_the_timeline_the_top_words_and_the_verdict(
    mapreduce_stack, student_user, browser_page
):
    page = browser_page
    log_in(page, mapreduce_stack.url, student_user)
    page.goto(f"{mapreduce_stack.url}/labs/mapreduce/")
    panel = start_from_lab_page(page, "wordcount", SMALL)
    assert page.get_by_test_id("verdict").get_attribute("data-verdict") == "pass", invariants(page)

    for phase in ("split", "map", "shuffle", "reduce", "output"):
        expect(panel.locator(f".mr-phase[data-phase={phase}]")).to_have_attribute("data-state", "done")
    flow = panel.get_by_test_id("mr-flow")
    expect(flow.locator(".mr-lane-label[data-worker]")).to_have_count(2)
    expect(flow.locator(".mr-split")).to_have_count(4)
    # Every task has one completed attempt, in the lane of the worker that ran it.
    expect(flow.locator(".mr-lane--map .mr-chip--completed")).to_have_count(4)
    expect(flow.locator(".mr-lane--reduce .mr-chip--completed")).to_have_count(2)
    expect(flow.locator(".mr-part")).to_have_count(2)
    expect(panel.get_by_test_id("mr-counters").locator("[data-counter=maps]")).to_contain_text("4 / 4")
    expect(panel.get_by_test_id("mr-output")).to_contain_text("reference (one process)")

    gantt = panel.get_by_test_id("mr-gantt")
    expect(gantt.locator("g.mr-bar--map")).to_have_count(4)
    expect(gantt.locator("g.mr-bar--reduce")).to_have_count(2)
    lanes = set(gantt.locator("g.mr-bar").evaluate_all("bars => bars.map(b => b.dataset.worker)"))
    assert lanes == {"w1", "w2"}, lanes

    chart = panel.get_by_test_id("mr-chart")
    expect(chart.locator(".bars .point")).to_have_count(20)
    top_words = page.evaluate("distlab.events.find(e => e.data.type === 'output').data.top.map(([w]) => w)")
    expect(chart).to_contain_text(top_words[0])
    # How many tasks ran at once is measured and shown beside the verdict, not judged in it.
    expect(panel.get_by_test_id("mr-counters").locator("[data-counter=peak_maps_running]")).to_contain_text("at once")
    expect(page.get_by_test_id("invariants")).not_to_contain_text("parallel")

    # The Download link gives the whole output, key<TAB>value lines sorted by key.
    link = panel.get_by_test_id("mr-download-link")
    with page.expect_download() as download:
        link.click()
    rows = [line.split("\t") for line in open(download.value.path(), encoding="utf-8").read().splitlines()]
    keys = [key for key, _ in rows]
    assert keys == sorted(keys) and len(keys) == page.evaluate(
        "distlab.events.find(e => e.data.type === 'output').data.keys"
    )
    assert dict(rows)[top_words[0]] == str(
        page.evaluate("distlab.events.find(e => e.data.type === 'output').data.top[0][1]")
    )

    # Scrubbed back to before the maps, the same panel shows the run as it was then.
    seq = page.evaluate("distlab.events.find(e => e.kind === 'phase' && e.data.name === 'map').seq")
    page.evaluate(f"distlab.player.scrubTo({seq})")
    expect(panel.locator(".mr-phase[data-phase=map]")).to_have_attribute("data-state", "active")
    expect(flow.locator(".mr-chip--completed")).to_have_count(0)
    expect(gantt).to_contain_text("No task has started on a worker yet.")
    page.evaluate("distlab.player.scrubTo(distlab.events.length)")
    expect(gantt.locator("g.mr-bar")).to_have_count(6)
    assert page.errors == []


def test_a_file_uploaded_from_the_lab_page_becomes_the_runs_input(
    mapreduce_stack, student_user, browser_page, tmp_path
):
    page = browser_page
    log_in(page, mapreduce_stack.url, student_user)
    page.goto(f"{mapreduce_stack.url}/labs/mapreduce/")
    form = page.get_by_test_id("run-form-wordcount")
    field = form.locator(".mr-upload")

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    form.get_by_test_id("upload-wordcount").set_input_files(str(empty))
    expect(field.locator("[data-error-for=file]")).to_have_text("the file is empty")
    expect(form.locator("[data-param=input]")).to_have_value("licenses")

    # Past the limit, through the real server: a clear message, not a server error.
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * (21 * 1024 * 1024 // 5))
    form.get_by_test_id("upload-wordcount").set_input_files(str(big))
    expect(field.locator("[data-error-for=file]")).to_have_text("the file is 21 MiB; the limit is 20 MiB")

    words = tmp_path / "fruit.txt"
    words.write_text("zebrafruit apple zebrafruit\nbanana zebrafruit apple\n" * 50)
    form.get_by_test_id("upload-wordcount").set_input_files(str(words))
    expect(field.locator("[data-role=upload-status]")).to_contain_text("Uploaded fruit.txt")
    expect(field.locator("[data-error-for=file]")).to_be_hidden()
    expect(form.locator("[data-param=input]")).to_have_value("upload")
    assert TOKEN_RE.match(form.locator("[data-param=upload]").input_value())

    panel = start_from_lab_page(page, "wordcount", {"maps": "2", "reduces": "2"})
    # Tasks this small may be too short to show parallelism; the output must still be right.
    assert invariants(page)["output_matches_reference"] is True, invariants(page)
    expect(panel.get_by_test_id("mr-splits")).to_contain_text("from upload")
    output = panel.get_by_test_id("mr-output")
    expect(output).to_contain_text("wordcount: 3 keys")
    expect(output.locator(".mr-top li").first).to_contain_text("zebrafruit 150")
    assert page.errors == []
