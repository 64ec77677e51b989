"""Narration and links to a moment in a real browser: a finished ping run's page tells what to watch
before the first event and, wherever the view is put, the caption of the latest event a caption
matches (as Caption.matches finds it on the server), the earlier ones below as links; /runs/<id>/?at=
opens the run at that event; "Copy link to this moment" gives such a link."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from apps.runs.launch import create_run, enqueue
from apps.runs.models import Event, Run
from apps.runs.registry import LABS, Caption
from tests.browser.conftest import SLOW, log_in
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("DISTLAB_SHOTS")  # a folder to keep screenshots in, when set


def off_the_loop(fn, *args, **kwargs):
    """Database work in a thread of its own: Playwright's sync API runs an event loop in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=False)


def finished_ping(owner):
    def go():
        run = create_run(owner, "diagnostics", "ping", {"rounds": 2}, speed=0)
        enqueue(run)
        wait_until(lambda: Run.objects.get(pk=run.pk).is_finished, 90, "the ping run to finish")
        run.refresh_from_db()
        assert run.status == "done"
        return run, [e.as_dict() for e in Event.objects.filter(run=run).order_by("seq")]

    return off_the_loop(go)


def narration_at(captions, events, k):
    """What the panel should say at position k: the caption of the latest event at or before k that
    one matches (the first caption matching it), and the earlier ones, each once, latest first."""
    hits = []
    for event in events[:k]:
        found = next((c for c in captions if c.matches(event)), None)
        if found:
            hits.append((event["seq"], found))
    if not hits:
        return None, []
    current = hits[-1]
    earlier, seen = [], {current[1].text}
    for seq, caption in reversed(hits[:-1]):
        if caption.text not in seen:
            seen.add(caption.text)
            earlier.append((seq, caption.text))
    return current, earlier


def open_run(page, base_url, run, query=""):
    page.goto(f"{base_url}/runs/{run.pk}/{query}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "complete", timeout=SLOW)


def test_it_tells_what_to_watch_then_the_caption_at_the_views_position(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    scenario = LABS["diagnostics"].scenarios["ping"]
    assert scenario.watch and scenario.captions
    run, events = finished_ping(student_user)
    open_run(page, live_stack.url, run)

    panel = page.get_by_test_id("narration")
    now = page.get_by_test_id("narration-now")
    earlier = page.get_by_test_id("narration-earlier")
    expect(panel).to_be_visible()

    # At the end: the last caption reached, every earlier one listed once.
    current, before = narration_at(scenario.captions, events, len(events))
    expect(now).to_contain_text(current[1].text)
    expect(now).to_have_attribute("data-seq", str(current[0]))
    expect(earlier.locator("a")).to_have_text([text for _, text in before])
    shot(page, "narration-end")

    # Before the first event: the scenario's "what to watch" line, and nothing reached yet.
    page.get_by_test_id("scrubber").fill("0")
    expect(now).to_have_text(f"Before it starts: {scenario.watch}")
    expect(panel).to_have_attribute("data-state", "watch")
    expect(earlier).to_be_hidden()
    shot(page, "narration-watch")

    # Scrubbed anywhere, the panel says what the server's matching says for that position.
    checked = 0
    for k in sorted({1, 8, 10, 17, 30, len(events) // 2, len(events) - 1}):
        page.get_by_test_id("scrubber").fill(str(k))
        expect(page.locator("#scrub-label")).to_have_text(f"{k} / {len(events)}")
        current, before = narration_at(scenario.captions, events, k)
        if current is None:
            expect(panel).to_have_attribute("data-state", "watch")
            continue
        expect(now).to_contain_text(current[1].text)
        expect(now).to_contain_text(f"event {current[0]}")
        expect(earlier.locator("a")).to_have_text([text for _, text in before])
        checked += 1
    assert checked >= 4
    shot(page, "narration-scrubbed")

    # Stepping forward onto a captioned event shows its caption: stepped and scrubbed agree.
    seq, caption = next((e["seq"], c) for e in events for c in scenario.captions if c.matches(e) and e["seq"] > 2)
    page.get_by_test_id("scrubber").fill(str(seq - 1))
    page.locator("#step-forward").click()
    expect(now).to_contain_text(caption.text)

    # An earlier caption is a link to its moment: a click moves the view there and holds it still.
    page.get_by_test_id("scrubber").fill(str(len(events)))
    first_seq, first_text = narration_at(scenario.captions, events, len(events))[1][-1]
    link = earlier.locator("a", has_text=first_text)
    expect(link).to_have_attribute("href", f"?at={first_seq}")
    link.click()
    expect(page.locator("#scrub-label")).to_have_text(f"{first_seq} / {len(events)}")
    expect(page.get_by_test_id("live")).not_to_be_checked()
    expect(now).to_contain_text(first_text)
    assert page.errors == []


def test_it_matches_in_the_browser_exactly_as_caption_matches(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    page.goto(f"{live_stack.url}/runs/")
    event = {
        "seq": 9,
        "kind": "log",
        "actor": "coordinator",
        "label": "decision logged: commit",
        "data": {"decision": "commit", "n": 2, "ok": True, "ids": [1, 2], "at": {"t": 1.0}, "none": None},
    }
    captions = [
        Caption("t", "log"),
        Caption("t", "msg"),
        Caption("t", "log", "decision"),
        Caption("t", "log", "Decision"),
        Caption("t", "log", actor="coordinator"),
        Caption("t", "log", actor="recovery"),
        Caption("t", "log", data={"decision": "commit"}),
        Caption("t", "log", data={"decision": "abort"}),
        Caption("t", "log", data={"n": 2.0}),
        Caption("t", "log", data={"n": "2"}),
        Caption("t", "log", data={"ok": 1}),
        Caption("t", "log", data={"ok": True, "n": 3}),
        Caption("t", "log", data={"ids": [1, 2]}),
        Caption("t", "log", data={"ids": [2, 1]}),
        Caption("t", "log", data={"at": {"t": 1}}),
        Caption("t", "log", data={"at": {"t": 1, "u": 2}}),
        Caption("t", "log", data={"missing": None}),
        Caption("t", "log", data={"none": None}),
        Caption("t", "log", data={"constructor": None}),
        Caption("t", "log", data={"missing": 0}),
    ]
    bare = {"seq": 1, "kind": "end", "actor": "checker"}
    cases = [(c.describe(), event) for c in captions]
    cases += [(Caption("t", "end").describe(), bare), (Caption("t", "end", "x").describe(), bare)]
    expected = [Caption(**c).matches(e) for c, e in cases]
    assert True in expected and False in expected
    found = page.evaluate(
        """async (cases) => {
             const { matches } = await import("/static/runs/js/narration.js");
             return cases.map(([caption, event]) => matches(caption, event));
           }""",
        cases,
    )
    assert found == expected


def test_it_opens_a_deep_link_at_its_event_and_refuses_a_bad_one(live_stack, student_user, browser_page):
    page = browser_page
    log_in(page, live_stack.url, student_user)
    scenario = LABS["diagnostics"].scenarios["ping"]
    run, events = finished_ping(student_user)
    n = len(events)
    seq = next(e["seq"] for e in events for c in scenario.captions if c.matches(e) and 3 < e["seq"] < n - 3)

    open_run(page, live_stack.url, run, f"?at={seq}")
    expect(page.locator("#scrub-label")).to_have_text(f"{seq} / {n}")
    expect(page.get_by_test_id("live")).not_to_be_checked()
    assert page.evaluate("distlab.player.k") == seq
    expect(page.get_by_test_id("narration-now")).to_contain_text(
        narration_at(scenario.captions, events, seq)[0][1].text
    )
    shot(page, "deep-link")

    # Past the end: the end, and a word why.
    open_run(page, live_stack.url, run, f"?at={n + 500}")
    expect(page.locator("#scrub-label")).to_have_text(f"{n} / {n}")
    expect(page.locator("#toast")).to_contain_text(f"The run has {n} events, not {n + 500}")

    # Not an event number: ignored with a toast, the run opens as it would without it.
    open_run(page, live_stack.url, run, "?at=twelve")
    expect(page.locator("#toast")).to_contain_text("Ignored ?at=twelve")
    expect(page.locator("#scrub-label")).to_have_text(f"{n} / {n}")
    shot(page, "deep-link-bad")
    assert page.errors == []


def test_it_copies_a_link_to_the_moment_that_opens_there(live_stack, student_user, browser_page):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_stack.url)
    log_in(page, live_stack.url, student_user)
    run, events = finished_ping(student_user)
    open_run(page, live_stack.url, run)

    page.get_by_test_id("scrubber").fill("14")
    page.get_by_test_id("copy-moment").click()
    expect(page.get_by_test_id("moment-said")).to_have_text("Link to event 14 copied.")
    link = page.evaluate("navigator.clipboard.readText()")
    parsed = urlparse(link)
    assert parsed.path == f"/runs/{run.pk}/" and parse_qs(parsed.query) == {"at": ["14"]}
    shot(page, "copy-link")

    # The link opens the run at that moment.
    page.goto(link)
    expect(page.locator("#connection")).to_have_attribute("data-state", "complete", timeout=SLOW)
    expect(page.locator("#scrub-label")).to_have_text(f"14 / {len(events)}")

    # Moved on and copied again, the link follows the view, not the address it was opened with.
    page.get_by_test_id("scrubber").fill("20")
    page.get_by_test_id("copy-moment").click()
    expect(page.get_by_test_id("moment-said")).to_have_text("Link to event 20 copied.")
    assert parse_qs(urlparse(page.evaluate("navigator.clipboard.readText()")).query) == {"at": ["20"]}
    assert page.errors == []


def test_it_puts_the_link_in_a_selected_field_when_the_clipboard_refuses(live_stack, student_user, browser_page):
    page = browser_page
    # The clipboard a browser refuses (no permission, a page not in a secure context).
    page.add_init_script(
        "navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));"
    )
    log_in(page, live_stack.url, student_user)
    run, _ = finished_ping(student_user)
    open_run(page, live_stack.url, run)

    page.get_by_test_id("scrubber").fill("9")
    page.get_by_test_id("copy-moment").click()
    field = page.get_by_test_id("moment-url")
    expect(field).to_be_visible()
    expect(field).to_have_value(re.compile(rf"/runs/{run.pk}/\?at=9$"))
    expect(field).to_be_focused()
    assert page.evaluate(
        "(() => { const f = document.getElementById('moment-url'); return f.selectionEnd - f.selectionStart === f.value.length; })()"
    )
    expect(page.get_by_test_id("moment-said")).to_have_text(
        re.compile(r"^(Link to event 9 copied\.|Copy the selected link \(Ctrl\+C\)\.)$")
    )
    shot(page, "copy-link-fallback")
    assert page.errors == []
