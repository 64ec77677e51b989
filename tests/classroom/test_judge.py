"""Judging finished runs against the lab sheets: real runs executed by the runner as a worker
executes them, over the real MariaDB and the Redis channel layer.

alice and bob are students of one class; the sheet is a diagnostics sheet of the test's own."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.classroom.judge import board_group
from apps.classroom.models import CheckpointPass, Classroom, Membership
from apps.classroom.sheets import all_sheets, parse_sheet
from apps.runs.launch import create_run
from apps.runs.models import Run
from apps.runs.runner import execute
from apps.runs.signals import run_finished
from apps.runs.transfer import export_lines, import_run

pytestmark = pytest.mark.django_db(transaction=True)

SHEET = "diagnostics/judge-test"
SHEET_TEXT = """# Probing the nodes

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
id: ping-fails
title: Make ping fail
scenario: ping
verdict: fail
```

```question
id: why-probe
title: Why probe every node?
```
"""


@pytest.fixture
def sheet(monkeypatch):
    parsed = parse_sheet(SHEET_TEXT, lab="diagnostics", slug=SHEET)
    monkeypatch.setitem(all_sheets(), SHEET, parsed)
    return parsed


def ping(owner, rounds):
    """A run of ping, queued as the API queues one and executed as the worker executes it."""
    return execute(create_run(owner, "diagnostics", "ping", {"rounds": rounds}, 7).pk, broadcast=False)


def passed(user):
    return {(p.checkpoint, p.run_id) for p in CheckpointPass.objects.filter(user=user, sheet=SHEET)}


def test_it_passes_the_checkpoints_a_finished_run_meets_and_no_others(sheet, student_user):
    run = ping(student_user, 3)
    assert run.status == "done" and run.verdict == "pass"
    assert passed(student_user) == {("ping-passes", run.pk)}


def test_it_keeps_the_first_passing_run_and_adds_what_a_later_run_meets(sheet, student_user):
    first = ping(student_user, 3)
    longer = ping(student_user, 10)
    assert passed(student_user) == {("ping-passes", first.pk), ("ping-long", longer.pk)}


def test_it_never_passes_another_users_checkpoint(sheet, student_user, other_student):
    ping(other_student, 10)
    assert passed(student_user) == set()
    assert {c for c, _ in passed(other_student)} == {"ping-passes", "ping-long"}


def test_it_never_passes_a_checkpoint_with_an_imported_run(sheet, student_user, other_student):
    original = ping(other_student, 10)
    CheckpointPass.objects.all().delete()
    copy = import_run(list(export_lines(original)), owner=student_user)
    assert copy.is_imported and copy.status == "done" and copy.verdict == "pass"
    run_finished.send(sender=Run, run=copy)
    assert passed(student_user) == set()
    assert not sheet.checkpoint("ping-passes").met_by(copy)


def test_it_tells_the_board_of_each_class_of_the_owner_after_every_finished_run(sheet, student_user):
    one = Classroom.objects.create(name="One")
    two = Classroom.objects.create(name="Two")
    other = Classroom.objects.create(name="Other")
    Membership.objects.create(classroom=one, user=student_user)
    Membership.objects.create(classroom=two, user=student_user)
    layer = get_channel_layer()
    channels = {}
    for room in (one, two, other):
        channels[room.pk] = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(board_group(room.pk), channels[room.pk])

    # rounds=2 meets nothing new after the first run: the board is told all the same (attempts).
    ping(student_user, 3)
    ping(student_user, 2)
    for room in (one, two):
        for _ in range(2):
            message = async_to_sync(layer.receive)(channels[room.pk])
            assert message == {"type": "board.student", "student": student_user.pk}
    async_to_sync(layer.send)(channels[other.pk], {"type": "probe"})
    assert async_to_sync(layer.receive)(channels[other.pk]) == {"type": "probe"}
