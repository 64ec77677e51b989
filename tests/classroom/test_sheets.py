"""The lab sheet parser: what a good sheet gives, each mistake reported with its file and line,
the prose cleaned of anything that runs, the judge's reasons, and every sheet shipped with a lab."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from apps.classroom.judge import judge_run
from apps.classroom.models import Answer
from apps.classroom.sheets import SheetError, all_sheets, get_sheet, parse_sheet, sheets_of
from apps.runs.models import Run
from apps.runs.registry import LABS

ROOT = Path(__file__).resolve().parent.parent.parent

GOOD = """# Locks, leases and fences

Read *this* first.

```checkpoint
id: lease-pause-fails
title: Watch redis-lease-pause fail
scenario: redis-lease-pause
verdict: fail
```

Between the blocks.

```checkpoint
id: lease-ttl-holds
title: Find a TTL at which redis-lease-pause holds
scenario: redis-lease-pause
verdict: pass
param ttl_ms: >= 8000
param pause_ms: = 7000
```

```question
id: why-fencing
title: Why does the fencing token stop the paused client's write?
```

```python
print("an ordinary code block stays prose")
```
"""


def parse(text):
    return parse_sheet(text, lab="locks", slug="locks/test", file="locks/sheets/test.md")


def error_of(text):
    with pytest.raises(SheetError) as caught:
        parse(text)
    return caught.value


def test_it_reads_the_title_checkpoints_and_prose_of_a_good_sheet():
    sheet = parse(GOOD)
    assert sheet.title == "Locks, leases and fences"
    assert [(c.id, c.kind) for c in sheet.checkpoints] == [
        ("lease-pause-fails", "run"),
        ("lease-ttl-holds", "run"),
        ("why-fencing", "question"),
    ]
    holds = sheet.checkpoint("lease-ttl-holds")
    assert (holds.scenario, holds.verdict) == ("redis-lease-pause", "pass")
    assert [(c.param, c.op, c.value) for c in holds.constraints] == [("ttl_ms", ">=", 8000), ("pause_ms", "=", 7000)]
    assert "<h1" not in sheet.html and "<em>this</em>" in sheet.html
    assert "an ordinary code block stays prose" in sheet.html
    # Prose and cards in the file's order.
    order = [c.id if c else "prose" for _, c in sheet.parts]
    assert order == ["prose", "lease-pause-fails", "prose", "lease-ttl-holds", "why-fencing", "prose"]
    assert 'data-checkpoint="why-fencing"' in sheet.html


def test_it_judges_verdict_and_params_and_says_what_is_missing():
    holds = parse(GOOD).checkpoint("lease-ttl-holds")
    ok = {"ttl_ms": 9000, "pause_ms": 7000}
    assert holds.judge("locks", "redis-lease-pause", ok, "pass") == (True, "")
    met, reason = holds.judge("locks", "redis-lease-pause", {"ttl_ms": 4000, "pause_ms": 7000}, "fail")
    assert not met
    assert reason == "the verdict was fail, this needs pass; ttl_ms is 4000, this needs ttl_ms >= 8000"
    met, reason = holds.judge("locks", "redis-lease", ok, "pass")
    assert not met and "this needs locks/redis-lease-pause" in reason


def test_it_reads_in_lists_with_the_params_own_cleaning():
    sheet = parse(GOOD.replace("param pause_ms: = 7000", "param pause_ms: in 6000, 7000"))
    holds = sheet.checkpoint("lease-ttl-holds")
    assert holds.constraints[1].value == (6000, 7000)
    assert holds.judge("locks", "redis-lease-pause", {"ttl_ms": 8000, "pause_ms": 6000}, "pass")[0]
    assert not holds.judge("locks", "redis-lease-pause", {"ttl_ms": 8000, "pause_ms": 5000}, "pass")[0]


@pytest.mark.parametrize(
    ("change", "line", "says"),
    [
        (
            ("scenario: redis-lease-pause\nverdict: pass", "scenario: no-such\nverdict: pass"),
            17,
            "unknown scenario 'no-such'",
        ),
        (("param ttl_ms: >= 8000", "param ttl: >= 8000"), 19, "unknown param 'ttl'"),
        (("param ttl_ms: >= 8000", "param ttl_ms: >= lots"), 19, "must be an integer"),
        (("param ttl_ms: >= 8000", "param ttl_ms: >= 0"), 19, "must be at least 1"),
        (("param ttl_ms: >= 8000", "param ttl_ms: ~ 8000"), 19, "needs an operator"),
        (("param ttl_ms: >= 8000", "param ttl_ms: in 1,,2"), 19, "a value is missing"),
        (("id: lease-ttl-holds", "id: lease-pause-fails"), 14, "duplicate id 'lease-pause-fails' (first on line 5)"),
        (("id: lease-ttl-holds", "id: Lease_TTL"), 15, "id 'Lease_TTL' must be lower-case"),
        (("title: Find a TTL at which redis-lease-pause holds\n", ""), 14, "has no title"),
        (("verdict: pass\nparam", "verdict: maybe\nparam"), 18, "verdict must be pass or fail"),
        (("verdict: pass\nparam", "verdict: pass\ncolour: red\nparam"), 19, "unknown key 'colour'"),
        (("verdict: pass\nparam", "verdict: pass\nverdict: fail\nparam"), 19, "verdict is given twice"),
        (("# Locks, leases and fences", "Locks, leases and fences"), 1, "begins with a `# Title` line"),
    ],
)
def test_it_reports_each_mistake_with_its_file_and_line(change, line, says):
    old, new = change
    assert old in GOOD
    error = error_of(GOOD.replace(old, new, 1))
    assert (error.file, error.line) == ("locks/sheets/test.md", line), str(error)
    assert says in error.message
    assert str(error).startswith(f"locks/sheets/test.md:{line}: ")


def test_it_refuses_an_ordering_operator_on_a_param_that_is_no_number():
    text = GOOD.replace("scenario: redis-lease-pause\nverdict: pass", "scenario: pessimistic\nverdict: pass")
    text = text.replace("param ttl_ms: >= 8000\nparam pause_ms: = 7000", "param transaction: > true")
    assert "needs a number" in error_of(text).message


def test_it_cleans_scripts_handlers_and_javascript_links_out_of_the_prose(tmp_path):
    folder = tmp_path / "sheets"
    folder.mkdir()
    (folder / "evil.md").write_text(
        GOOD.replace(
            "Read *this* first.",
            '<script>alert("owned")</script>\n\n'
            '<img src="x.png" onerror="alert(1)">\n\n'
            '<a href="javascript:alert(2)" onclick="alert(3)">raw link</a>\n\n'
            "[md link](javascript:alert(4)) and [fine](https://example.org/ok)\n\n"
            '<iframe src="https://example.org"></iframe><style>body{display:none}</style>\n\n'
            '<p style="position:fixed">styled</p>',
        )
    )
    html = sheets_of("locks", folder)["locks/evil"].html.lower()
    for gone in ("<script", 'alert("owned', "onerror", "onclick", "<iframe", "<style", "position:fixed"):
        assert gone not in html
    # A javascript: link Markdown refuses stays as its text; none survives as a link.
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript""", html)
    assert 'href="https://example.org/ok"' in html and "raw link" in html


def test_it_names_the_sheets_that_exist_when_one_is_unknown():
    with pytest.raises(LookupError) as caught:
        get_sheet("locks/no-such-sheet")
    assert "no-such-sheet" in str(caught.value) and "sheets:" in str(caught.value)


def test_it_parses_every_sheet_shipped_with_a_lab():
    shipped = sorted(ROOT.glob("apps/*/sheets/*.md"))
    assert shipped, "no lab ships a sheet"
    sheets = all_sheets()
    for path in shipped:
        lab = path.parent.parent.name
        assert lab in LABS, f"{path} is in the folder of {lab}, which registers no lab"
        slug = f"{lab}/{path.stem}"
        assert slug in sheets, f"{path} was not found by all_sheets()"
        assert sheets[slug].checkpoints, f"{path} has no checkpoint"


# The pages --------------------------------------------------------------------------------------

PAGE_SHEET = "diagnostics/page-test"
PAGE_TEXT = """# Probing the nodes

Ping <b>every</b> node first.

```checkpoint
id: ping-passes
title: Ping every node
scenario: ping
verdict: pass
```

```checkpoint
id: ping-long
title: Ping ten rounds
scenario: ping
verdict: pass
param rounds: >= 10
```

```checkpoint
id: stream-it
title: Stream some load
scenario: stream-load
verdict: pass
```

```question
id: why-probe
title: Why probe every node?
```
"""


@pytest.fixture
def page_sheet(monkeypatch):
    sheet = parse_sheet(PAGE_TEXT, lab="diagnostics", slug=PAGE_SHEET)
    monkeypatch.setitem(all_sheets(), PAGE_SHEET, sheet)
    return sheet


def logged_in(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_of(client, url):
    response = client.get(url)
    return response, response.cookies["csrftoken"].value


def finished_ping(owner, rounds, **fields):
    fields = {"status": "done", "verdict": "pass", **fields}
    return Run.objects.create(
        owner=owner,
        lab="diagnostics",
        scenario="ping",
        params={"rounds": rounds},
        seed=1,
        finished_at=timezone.now(),
        **fields,
    )


URL = "/sheets/diagnostics/page-test/"


@pytest.mark.django_db
def test_it_shows_each_checkpoint_as_passed_tried_or_not_started(page_sheet, student_user, other_student):
    passing = finished_ping(student_user, 3)
    judge_run(passing)
    short = finished_ping(student_user, 4)
    finished_ping(other_student, 12)  # bob's run is no attempt of alice's
    page = logged_in(student_user).get(URL).content.decode()
    assert 'data-testid="checkpoint-ping-passes" data-state="passed"' in page
    assert f'href="/runs/{passing.pk}/" data-testid="passed-run-ping-passes"' in page
    assert 'data-testid="checkpoint-ping-long" data-state="tried"' in page
    assert f'href="/runs/{short.pk}/" data-testid="tried-run-ping-long"' in page
    assert "rounds is 4, this needs rounds &gt;= 10" in page
    assert 'data-testid="checkpoint-stream-it" data-state="not-started"' in page
    assert 'href="/labs/diagnostics/#scenario-stream-load" data-testid="start-stream-it"' in page
    assert "Ping <b>every</b> node first." in page
    assert "2 of 4 done" not in page and "1 of 4 done" in page


@pytest.mark.django_db
def test_it_lists_every_sheet_with_the_users_progress(page_sheet, student_user):
    judge_run(finished_ping(student_user, 3))
    page = logged_in(student_user).get("/sheets/").content.decode()
    for sheet in all_sheets().values():
        assert f'href="/sheets/{sheet.slug}/"' in page
    assert "1/4 done" in page


@pytest.mark.django_db
def test_every_page_links_to_the_sheets_in_its_main_menu(student_user):
    home = logged_in(student_user).get("/").content.decode()
    assert '<a href="/sheets/">Lab sheets</a>' in home
    sheets = logged_in(student_user).get("/sheets/").content.decode()
    assert '<a href="/sheets/" aria-current="page">Lab sheets</a>' in sheets


@pytest.mark.django_db
def test_it_links_the_lab_page_to_its_sheet(page_sheet, student_user):
    page = logged_in(student_user).get("/labs/diagnostics/").content.decode()
    assert f'<a href="{URL}">Lab sheet: Probing the nodes</a>' in page


@pytest.mark.django_db
def test_it_requires_a_login_and_404s_an_unknown_sheet(page_sheet, student_user):
    assert Client().get(URL).status_code == 302
    assert logged_in(student_user).get("/sheets/diagnostics/no-such/").status_code == 404


@pytest.mark.django_db
def test_it_saves_an_answer_from_the_page_and_shows_it_back(page_sheet, student_user):
    client = logged_in(student_user)
    _, token = csrf_of(client, URL)
    response = client.post(
        URL + "answer/", {"checkpoint": "why-probe", "text": "A node can be down."}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302
    assert Answer.objects.get(user=student_user, sheet=PAGE_SHEET, checkpoint="why-probe").text == "A node can be down."
    page = client.get(URL).content.decode()
    assert "A node can be down.</textarea>" in page
    assert 'data-testid="checkpoint-why-probe" data-state="answered"' in page
    too_long = client.post(URL + "answer/", {"checkpoint": "why-probe", "text": "x" * 5001}, HTTP_X_CSRFTOKEN=token)
    assert too_long.status_code == 400 and "at most 5000 characters" in too_long.content.decode()
    assert client.post(URL + "answer/", {"checkpoint": "why-probe", "text": "no token"}).status_code == 403


@pytest.mark.django_db
def test_it_answers_bad_input_to_the_json_endpoint_with_field_errors(page_sheet, student_user, other_student):
    client = logged_in(student_user)
    _, token = csrf_of(client, URL)
    api = "/api/sheets/diagnostics/page-test/answers/"

    def post(body):
        return client.post(api, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)

    ok = post({"checkpoint": "why-probe", "text": "Because."})
    assert ok.status_code == 200 and ok.json()["text"] == "Because."
    assert post({"checkpoint": "why-probe", "text": "y" * 5001}).json()["text"]
    assert post({"checkpoint": "why-probe", "text": "y" * 5001}).status_code == 400
    wrong = post({"checkpoint": "ping-passes", "text": "runs are not answered"})
    assert wrong.status_code == 400 and "passed by a run" in wrong.json()["checkpoint"][0]
    unknown = post({"checkpoint": "nope", "text": "?"})
    assert unknown.status_code == 400 and "why-probe" in unknown.json()["checkpoint"][0]
    assert post({"text": "?"}).json() == {"checkpoint": ["This field is required."]}
    assert client.post(api, "[1", content_type="application/json", HTTP_X_CSRFTOKEN=token).status_code == 400
    assert Answer.objects.get(user=student_user, checkpoint="why-probe").text == "Because."
    assert not Answer.objects.filter(user=other_student).exists()
