"""The instructor's board, over real MariaDB and the Redis channel layer: the grid read from the
students' passes, runs and answers; who may see it (page, CSV and websocket); the live rows.

charlie teaches class A (alice and bob); dana, also staff, teaches class B (erin). Class A works
through one sheet of the diagnostics lab: two run checkpoints and a question."""

import csv
import io
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from apps.classroom.board import STUCK_QUIET, Board, group_name
from apps.classroom.models import Answer, Assignment, CheckpointPass, Classroom, Membership
from apps.classroom.sheets import all_sheets, parse_sheet
from apps.runs.models import Run
from labsite.asgi import application
from tests.conftest import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

SHEET = "diagnostics/board-test"
PASSES, LONG, WHY = f"{SHEET}#ping-passes", f"{SHEET}#ping-long", f"{SHEET}#why-probe"


SHEET_TEXT = """# Probing the nodes

Ping every node, then ping longer.

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

```question
id: why-probe
title: Why probe every node?
```
"""


@pytest.fixture
def board_sheet(monkeypatch):
    """A sheet of the test's own, parsed as a shipped one is, among the process's sheets while
    the test runs (the board reads sheets through get_sheet like every page)."""
    sheet = parse_sheet(SHEET_TEXT, lab="diagnostics", slug=SHEET)
    monkeypatch.setitem(all_sheets(), SHEET, sheet)
    return sheet


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def make_run(owner, verdict="pass", status="done", rounds=5, scenario="ping", **fields):
    return Run.objects.create(
        owner=owner,
        lab="diagnostics",
        scenario=scenario,
        params={"rounds": rounds},
        seed=1,
        status=status,
        verdict=verdict if status == "done" else "",
        finished_at=timezone.now(),
        **fields,
    )


@pytest.fixture
def world(board_sheet, django_user_model, student_user, other_student, instructor):
    dana = django_user_model.objects.create_user("dana", password="labdemo-dana-pw", is_staff=True)
    erin = django_user_model.objects.create_user("erin", password="labdemo-erin-pw", first_name="Erin")
    class_a = Classroom.objects.create(name="Class A")
    class_a.instructors.add(instructor)
    Membership.objects.create(classroom=class_a, user=student_user)
    Membership.objects.create(classroom=class_a, user=other_student)
    Assignment.objects.create(classroom=class_a, sheet=SHEET, position=1)
    class_b = Classroom.objects.create(name="Class B")
    class_b.instructors.add(dana)
    Membership.objects.create(classroom=class_b, user=erin)
    return {
        "alice": student_user,
        "bob": other_student,
        "charlie": instructor,
        "dana": dana,
        "erin": erin,
        "class_a": class_a,
        "class_b": class_b,
    }


@pytest.fixture
def progress(world):
    """alice passed the first checkpoint, missed the second twice and answered the question."""
    alice = world["alice"]
    first = make_run(alice, rounds=5)
    CheckpointPass.objects.create(user=alice, sheet=SHEET, checkpoint="ping-passes", run=first)
    short = make_run(alice, rounds=3)
    Answer.objects.create(user=alice, sheet=SHEET, checkpoint="why-probe", text="=to see who answers\nand how fast")
    return {"first": first, "short": short}


def row_of(snapshot, user):
    return next(row for row in snapshot["rows"] if row["id"] == user.pk)


# The grid -------------------------------------------------------------------------------------


def test_it_shows_each_students_passes_tries_and_answers_by_checkpoint(world, progress):
    snapshot = Board(world["class_a"]).snapshot()
    assert [c["key"] for c in snapshot["columns"]] == [PASSES, LONG, WHY]
    assert [c["title"] for c in snapshot["columns"]] == ["Ping every node", "Ping ten rounds", "Why probe every node?"]
    assert "rounds >= 10" in snapshot["columns"][1]["asks"]
    assert [row["username"] for row in snapshot["rows"]] == ["alice", "bob"]

    alice = row_of(snapshot, world["alice"])
    passed, tried, answered = (alice["cells"][key] for key in (PASSES, LONG, WHY))
    assert passed["state"] == "passed" and passed["url"] == f"/runs/{progress['first'].pk}/"
    # Both of alice's runs are runs of the scenario that fell short of ten rounds; the latest opens.
    assert tried["state"] == "tried" and tried["tries"] == 2
    assert tried["url"] == f"/runs/{progress['short'].pk}/"
    assert tried["why"] == f"run #{progress['short'].pk}: rounds is 3, this needs rounds >= 10"
    assert answered == {"state": "answered", "text": "=to see who answers\nand how fast", "at": answered["at"]}
    assert (alice["passed"], alice["of"]) == (2, 3)
    assert alice["stuck_at"] == {"key": LONG, "title": "Ping ten rounds"}
    assert alice["last_run"] == progress["short"].created_at.isoformat()

    bob = row_of(snapshot, world["bob"])
    assert {cell["state"] for cell in bob["cells"].values()} == {"empty"}
    assert (bob["passed"], bob["stuck_at"]["key"], bob["last_run"], bob["stuck"]) == (0, PASSES, None, False)
    assert snapshot["totals"] == {PASSES: 1, LONG: 0, WHY: 1}


def test_it_counts_only_the_students_own_finished_runs_and_never_imported_ones(world, progress):
    alice, bob = world["alice"], world["bob"]
    make_run(alice, rounds=4, status="running")
    make_run(alice, rounds=4, imported_from={"file": "old.jsonl"})
    make_run(alice, scenario="ping-cluster", verdict="fail")
    make_run(bob, rounds=2, verdict="fail")
    cancelled = make_run(alice, status="cancelled")
    cell = row_of(Board(world["class_a"]).snapshot(), alice)["cells"][LONG]
    assert cell["tries"] == 3 and cell["run"] == cancelled.pk
    assert cell["why"].startswith(f"run #{cancelled.pk}: the run is cancelled")
    assert row_of(Board(world["class_a"]).snapshot(), bob)["cells"][PASSES]["state"] == "tried"


def test_it_marks_a_student_stuck_after_three_tries_at_the_same_checkpoint(world, progress):
    alice = world["alice"]
    assert row_of(Board(world["class_a"]).snapshot(), alice)["stuck"] is False
    make_run(alice, rounds=6)
    row = row_of(Board(world["class_a"]).snapshot(), alice)
    assert row["stuck"] is True and "tried “Ping ten rounds” 3 times" in row["stuck_why"]


def test_it_marks_a_student_stuck_when_a_quarter_hour_of_work_brought_no_pass(world):
    bob = world["bob"]
    run = make_run(bob, verdict="fail")
    later = run.created_at + STUCK_QUIET
    assert row_of(Board(world["class_a"], now=later - timedelta(seconds=1)).snapshot(), bob)["stuck"] is False
    row = row_of(Board(world["class_a"], now=later).snapshot(), bob)
    assert row["stuck"] is True and "15 minutes since their first run" in row["stuck_why"]
    # A pass starts the quarter-hour again; a student with nothing left to pass is never stuck.
    CheckpointPass.objects.create(user=bob, sheet=SHEET, checkpoint="ping-passes", run=run)
    assert row_of(Board(world["class_a"], now=later).snapshot(), bob)["stuck"] is False


def test_a_student_who_has_done_everything_is_all_done_and_never_stuck(world, progress):
    alice = world["alice"]
    done = make_run(alice, rounds=12)
    CheckpointPass.objects.create(user=alice, sheet=SHEET, checkpoint="ping-long", run=done)
    row = row_of(Board(world["class_a"], now=timezone.now() + timedelta(hours=2)).snapshot(), alice)
    assert (row["passed"], row["stuck_at"], row["stuck"]) == (3, None, False)


def test_the_page_shows_the_grid_its_rule_and_the_downloads(world, progress):
    page = logged_in(world["charlie"]).get(f"/classes/{world['class_a'].pk}/board/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-testid="stuck-rule"' in text and "3 or more times" in text and "15 minutes" in text
    assert f'href="/classes/{world["class_a"].pk}/board.csv"' in text
    fresh = Board(world["class_a"]).snapshot()
    assert page.context["board"]["rows"] == fresh["rows"] and page.context["board"]["columns"] == fresh["columns"]
    assert 'id="board-data"' in text and f'"url": "/runs/{progress["first"].pk}/"' in text


# Who may see it -------------------------------------------------------------------------------

BOARD_URLS = ("/classes/{}/board/", "/classes/{}/board.csv", "/classes/{}/board-answers.csv")


@pytest.mark.parametrize("url", BOARD_URLS)
@pytest.mark.parametrize("who", ["alice", "dana"])
def test_students_and_other_classes_instructors_get_404(world, progress, url, who):
    response = logged_in(world[who]).get(url.format(world["class_a"].pk))
    assert response.status_code == 404
    assert b"alice" not in response.content


@pytest.mark.parametrize("url", BOARD_URLS)
def test_the_classes_instructor_and_an_admin_read_the_board_and_nobody_logged_out(world, django_user_model, url):
    target = url.format(world["class_a"].pk)
    admin = django_user_model.objects.create_superuser("root", password="labdemo-root-pw")
    assert logged_in(world["charlie"]).get(target).status_code == 200
    assert logged_in(admin).get(target).status_code == 200
    anonymous = Client().get(target)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert logged_in(world["charlie"]).get(url.format(999999)).status_code == 404


# The CSV --------------------------------------------------------------------------------------


def read_csv(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_csv_has_a_row_per_student_and_a_state_and_run_per_checkpoint(world, progress):
    response = logged_in(world["charlie"]).get(f"/classes/{world['class_a'].pk}/board.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="class-a-board.csv"'
    header, alice, bob = read_csv(response)
    assert header == [
        "username", "name", "passed", "of", "stuck at", "stuck", "last run",
        PASSES, f"{PASSES} run", LONG, f"{LONG} run", WHY, f"{WHY} run",
    ]  # fmt: skip
    first = str(progress["first"].pk)
    assert alice[:5] == ["alice", "alice", "2", "3", LONG]
    assert alice[7:] == ["passed", first, "tried 2", "", "answered", ""]
    assert bob[:6] == ["bob", "bob", "0", "3", PASSES, ""] and bob[7:] == ["empty", ""] * 3


def test_the_answers_csv_has_the_text_and_is_safe_to_open_in_a_spreadsheet(world, progress):
    response = logged_in(world["charlie"]).get(f"/classes/{world['class_a'].pk}/board-answers.csv")
    assert response["Content-Disposition"] == 'attachment; filename="class-a-answers.csv"'
    header, answer = read_csv(response)
    assert header == ["username", "name", "sheet", "question", "title", "answer", "updated"]
    # The answer began with "=": a spreadsheet would have run it as a formula.
    assert answer[:6] == [
        "alice",
        "alice",
        SHEET,
        "why-probe",
        "Why probe every node?",
        "'=to see who answers\nand how fast",
    ]


# The websocket --------------------------------------------------------------------------------


@sync_to_async
def cookie_header(user):
    return session_cookie(user).encode()


async def board_socket(user, classroom_id):
    headers = [(b"origin", b"http://127.0.0.1:8000")]
    if user is not None:
        headers.append((b"cookie", await cookie_header(user)))
    return WebsocketCommunicator(application, f"/ws/classes/{classroom_id}/board/", headers=headers)


async def next_frame(comm, kind):
    while True:
        frame = await comm.receive_json_from(timeout=10)
        if frame["type"] == kind:
            return frame


async def test_the_websocket_sends_the_instructor_the_grid_on_connect(world, progress):
    comm = await board_socket(world["charlie"], world["class_a"].pk)
    connected, _ = await comm.connect()
    assert connected
    snapshot = await comm.receive_json_from(timeout=10)
    assert snapshot["type"] == "snapshot" and [r["username"] for r in snapshot["rows"]] == ["alice", "bob"]
    assert row_of(snapshot, world["alice"])["cells"][LONG]["tries"] == 2
    await comm.disconnect()


@pytest.mark.parametrize("who, code", [("alice", 4404), ("dana", 4404), (None, 4401)])
async def test_the_websocket_refuses_students_other_instructors_and_strangers(world, progress, who, code):
    comm = await board_socket(world[who] if who else None, world["class_a"].pk)
    connected, _ = await comm.connect()
    assert connected
    frame = await comm.receive_json_from(timeout=10)
    assert frame["type"] == "error" and frame["message"]
    assert await comm.receive_output(timeout=10) == {"type": "websocket.close", "code": code}
    await comm.disconnect()


async def test_a_board_student_message_sends_that_students_row_recomputed(world, progress):
    comm = await board_socket(world["charlie"], world["class_a"].pk)
    await comm.connect()
    await next_frame(comm, "snapshot")
    alice = world["alice"]
    passing = await sync_to_async(make_run)(alice, rounds=10)
    await sync_to_async(CheckpointPass.objects.create)(user=alice, sheet=SHEET, checkpoint="ping-long", run=passing)
    await get_channel_layer().group_send(
        group_name(world["class_a"].pk), {"type": "board.student", "student": alice.pk}
    )
    frame = await next_frame(comm, "row")
    assert frame["student"] == alice.pk
    assert frame["row"]["cells"][LONG] == {
        "state": "passed",
        "at": frame["row"]["cells"][LONG]["at"],
        "run": passing.pk,
        "url": f"/runs/{passing.pk}/",
    }
    assert frame["row"]["passed"] == 3 and frame["totals"] == {PASSES: 1, LONG: 1, WHY: 1}
    await comm.disconnect()


async def test_a_student_who_joins_or_leaves_appears_on_or_leaves_the_open_board(world):
    comm = await board_socket(world["charlie"], world["class_a"].pk)
    await comm.connect()
    await next_frame(comm, "snapshot")
    erin = world["erin"]
    membership = await sync_to_async(Membership.objects.create)(classroom=world["class_a"], user=erin)
    joined = await next_frame(comm, "row")
    assert joined["student"] == erin.pk and joined["row"]["name"] == "Erin"
    await sync_to_async(membership.delete)()
    left = await next_frame(comm, "row")
    assert left["student"] == erin.pk and left["row"] is None
    await comm.disconnect()


async def test_an_instructor_taken_off_the_class_stops_getting_its_rows(world):
    comm = await board_socket(world["charlie"], world["class_a"].pk)
    await comm.connect()
    await next_frame(comm, "snapshot")
    await sync_to_async(world["class_a"].instructors.remove)(world["charlie"])
    await get_channel_layer().group_send(group_name(world["class_a"].pk), {"type": "board.student", "student": 1})
    assert (await next_frame(comm, "error"))["message"]
    assert await comm.receive_output(timeout=10) == {"type": "websocket.close", "code": 4404}
    await comm.disconnect()


async def test_the_board_answers_anything_but_a_snapshot_request_with_an_error_frame(world):
    comm = await board_socket(world["charlie"], world["class_a"].pk)
    await comm.connect()
    await next_frame(comm, "snapshot")
    for bad in ("not json", '["a list"]', '{"action": "stop"}'):
        await comm.send_to(text_data=bad)
        assert "read-only" in (await comm.receive_json_from(timeout=10))["message"]
    await comm.send_json_to({"action": "snapshot"})
    assert (await comm.receive_json_from(timeout=10))["type"] == "snapshot"
    await comm.disconnect()
