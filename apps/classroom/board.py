"""The instructor's board: a class's students by the checkpoints of its sheets, live.

Generating the grid (`Board`, from the database and the sheets), delivering it (the views, the CSV
and `BoardConsumer`) and displaying it (static/classroom/js/board.js) are kept apart: the page and
the websocket send the same row dictionaries, so a row patched live reads exactly as a fresh page.

A cell is one of
    passed    the student's CheckpointPass; opens the run that passed it
    tried     finished runs of the checkpoint's scenario that did not meet it; opens the latest,
              says why it fell short
    answered  a question with the student's answer
    empty     nothing yet
"""

import asyncio
import contextlib
import csv
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.runs.models import Run

from .models import Answer, Assignment, CheckpointPass, Classroom, Membership
from .sheets import Checkpoint, get_sheet

logger = logging.getLogger(__name__)

# "Stuck", as the page states it: the same checkpoint tried this often without a pass, or this
# long without passing anything while working (counted from the last pass, or the first run).
STUCK_TRIES = 3
STUCK_QUIET = timedelta(minutes=15)
STUCK_RULE = (
    f"A student is marked stuck when they have tried the same checkpoint {STUCK_TRIES} or more times "
    f"without passing it, or when {int(STUCK_QUIET.total_seconds() // 60)} minutes have gone by since "
    "their last pass (or, with none yet, since their first run) while checkpoints are left."
)
# The stuck mark depends on the clock as well as on runs: connected boards are sent a fresh
# snapshot this often (seconds) so a student who stalls is marked without anyone reloading.
REFRESH_EVERY = 60.0


def group_name(classroom_id):
    return f"board-{classroom_id}"


def tell_board(classroom_id, student_id):
    """Asks the class's open boards to recompute one student's row."""
    message = {"type": "board.student", "student": student_id}
    try:
        async_to_sync(get_channel_layer().group_send)(group_name(classroom_id), message)
    except Exception:
        # The join (or removal) is saved whatever happens here; a board that missed it is right
        # again at its next snapshot.
        logger.warning("could not tell the board of class %s about student %s", classroom_id, student_id, exc_info=True)


def membership_changed(sender, instance, **kwargs):
    """post_save / post_delete of a Membership: once committed, the student's row is news."""
    transaction.on_commit(lambda: tell_board(instance.classroom_id, instance.user_id))


def can_read_board(user, classroom):
    """The class's instructors, and admins (superusers). Other staff teach other classes and get
    the same 404 as students: a class's progress is its instructors' business."""
    if not (user and user.is_authenticated):
        return False
    return user.is_superuser or classroom.taught_by(user)


def board_classroom(user, class_id):
    """The class whose board the user may read; 404 whatever the reason, so ids are not confirmed."""
    classroom = Classroom.objects.filter(pk=class_id).first()
    if classroom is None or not can_read_board(user, classroom):
        raise Http404("no such class")
    return classroom


# Generating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    sheet: str  # the sheet's slug
    sheet_title: str
    checkpoint: Checkpoint

    @property
    def key(self):
        return f"{self.sheet}#{self.checkpoint.id}"

    @property
    def is_question(self):
        return self.checkpoint.is_question

    def asks(self):
        """The checkpoint in full, for the header's hover."""
        if self.is_question:
            return f"{self.checkpoint.title} (a question the students answer in writing)"
        return f"{self.checkpoint.title}: {self.checkpoint.asks}"

    def describe(self):
        return {
            "key": self.key,
            "sheet": self.sheet,
            "sheet_title": self.sheet_title,
            "id": self.checkpoint.id,
            "title": self.checkpoint.title,
            "kind": "question" if self.is_question else "run",
            "scenario": "" if self.is_question else self.checkpoint.scenario,
            "asks": self.asks(),
        }


def _iso(moment):
    return moment.isoformat() if moment else None


class Board:
    """The grid of one class at one moment; rows are plain dicts, as the page and websocket send."""

    def __init__(self, classroom, now=None):
        self.classroom = classroom
        self.now = now or timezone.now()
        self.missing = []  # assigned sheets that no longer exist: said on the page
        self.columns = self._columns()

    def _columns(self):
        columns = []
        for slug in Assignment.objects.filter(classroom=self.classroom).values_list("sheet", flat=True):
            try:
                sheet = get_sheet(slug)
            except LookupError:
                self.missing.append(slug)
                continue
            columns += [Column(slug, sheet.title, cp) for cp in sheet.checkpoints]
        return columns

    def students(self, only=None):
        members = Membership.objects.filter(classroom=self.classroom).select_related("user")
        if only is not None:
            members = members.filter(user_id=only)
        return [m.user for m in members.order_by("user__username")]

    def rows(self, only=None):
        """Every student's row, or only one student's ([] if they are no longer a member)."""
        students = self.students(only)
        if not students:
            return []
        ids = [s.pk for s in students]
        sheets = {c.sheet for c in self.columns}
        passes = {
            (p.user_id, f"{p.sheet}#{p.checkpoint}"): p
            for p in CheckpointPass.objects.filter(user_id__in=ids, sheet__in=sheets)
        }
        answers = {
            (a.user_id, f"{a.sheet}#{a.checkpoint}"): a
            for a in Answer.objects.filter(user_id__in=ids, sheet__in=sheets)
        }
        # The students' own attempts at the labs of the class's sheets; an imported run is a record
        # of someone's past run, not an attempt.
        runs = {}
        labs = {c.checkpoint.lab for c in self.columns}
        fields = ("id", "owner_id", "lab", "scenario", "params", "status", "verdict", "created_at", "imported_from")
        for run in (
            Run.objects.filter(owner_id__in=ids, lab__in=labs, imported_from__isnull=True).only(*fields).order_by("id")
        ):
            runs.setdefault(run.owner_id, []).append(run)
        return [self._row(s, passes, answers, runs.get(s.pk, [])) for s in students]

    def _row(self, student, passes, answers, runs):
        cells, done, tries_by_key = {}, 0, {}
        stuck_at = None
        for column in self.columns:
            key = column.key
            if column.is_question:
                cell = self._question_cell(answers.get((student.pk, key)))
            else:
                cell = self._run_cell(column, passes.get((student.pk, key)), runs)
                tries_by_key[key] = cell.get("tries", 0)
            cells[key] = cell
            if cell["state"] in ("passed", "answered"):
                done += 1
            elif stuck_at is None:
                stuck_at = {"key": key, "title": column.checkpoint.title}
        last_run = max((r.created_at for r in runs), default=None)
        stuck, why = self._stuck(student, passes, runs, tries_by_key, stuck_at)
        return {
            "id": student.pk,
            "username": student.get_username(),
            "name": student.get_full_name() or student.get_username(),
            "passed": done,
            "of": len(self.columns),
            "stuck_at": stuck_at,
            "last_run": _iso(last_run),
            "stuck": stuck,
            "stuck_why": why,
            "cells": cells,
        }

    def _question_cell(self, answer):
        if answer is None:
            return {"state": "empty"}
        return {"state": "answered", "text": answer.text, "at": _iso(answer.updated_at)}

    def _run_cell(self, column, passed, runs):
        if passed is not None:
            cell = {"state": "passed", "at": _iso(passed.passed_at), "run": passed.run_id}
            if passed.run_id:
                cell["url"] = reverse("run-page", args=[passed.run_id])
            return cell
        cp = column.checkpoint
        missed, why = [], ""
        for run in runs:
            if run.lab != cp.lab or run.scenario != cp.scenario or run.status not in Run.FINISHED:
                continue
            met, reason = cp.judge_run(run)
            if not met:
                missed.append(run)
                why = f"run #{run.pk}: {reason}"
        if not missed:
            return {"state": "empty"}
        latest = missed[-1]
        return {
            "state": "tried",
            "tries": len(missed),
            "run": latest.pk,
            "url": reverse("run-page", args=[latest.pk]),
            "why": why,
        }

    def _stuck(self, student, passes, runs, tries_by_key, stuck_at):
        if stuck_at is None or not runs:
            return False, ""
        for column in self.columns:
            tries = tries_by_key.get(column.key, 0)
            if tries >= STUCK_TRIES:
                return True, f"tried “{column.checkpoint.title}” {tries} times without passing it"
        last_pass = max((p.passed_at for (uid, _), p in passes.items() if uid == student.pk), default=None)
        since = last_pass or min(r.created_at for r in runs)
        if self.now - since >= STUCK_QUIET:
            minutes = int((self.now - since).total_seconds() // 60)
            what = "their last pass" if last_pass else "their first run, with no pass yet"
            return True, f"{minutes} minutes since {what}"
        return False, ""

    def totals(self, rows):
        """Per checkpoint, how many students passed it (or answered it, for a question)."""
        counts = {c.key: 0 for c in self.columns}
        for row in rows:
            for key, cell in row["cells"].items():
                if cell["state"] in ("passed", "answered"):
                    counts[key] += 1
        return counts

    def snapshot(self):
        rows = self.rows()
        return {
            "type": "snapshot",
            "columns": [c.describe() for c in self.columns],
            "rows": rows,
            "totals": self.totals(rows),
            "students": len(rows),
            "missing": self.missing,
            "now": _iso(self.now),
        }

    def row_frame(self, student_id):
        """One student's row, recomputed; `row` is null when they are not (or no longer) a member.
        The totals come along, since that row may have changed them."""
        rows = self.rows(only=student_id)
        return {
            "type": "row",
            "student": student_id,
            "row": rows[0] if rows else None,
            "totals": self.counted_totals(),
            "now": _iso(self.now),
        }

    def counted_totals(self):
        """The same counts as totals(), read from the passes and answers without building rows."""
        members = Membership.objects.filter(classroom=self.classroom).values("user_id")
        sheets = {c.sheet for c in self.columns}
        counts = {c.key: 0 for c in self.columns}
        questions = {c.key for c in self.columns if c.is_question}
        for model, counted_for in ((CheckpointPass, counts.keys() - questions), (Answer, questions)):
            pairs = model.objects.filter(user_id__in=members, sheet__in=sheets).values_list("sheet", "checkpoint")
            for sheet, checkpoint in pairs:
                key = f"{sheet}#{checkpoint}"
                if key in counted_for:
                    counts[key] += 1
        return counts


# Delivering: HTTP -----------------------------------------------------------------------------


def board_page(request, class_id):
    classroom = board_classroom(request.user, class_id)
    board = Board(classroom)
    context = {
        "classroom": classroom,
        "board": board.snapshot(),
        "ws": f"/ws/classes/{classroom.pk}/board/",
        "stuck_rule": STUCK_RULE,
        "missing": board.missing,
    }
    return render(request, "classroom/board.html", context)


def _safe(value):
    """A cell a spreadsheet will not run as a formula: students write their names and answers."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_response(rows, filename):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([_safe(v) for v in row])
    return response


def _file_stem(classroom):
    return slugify(classroom.name) or f"class-{classroom.pk}"


def board_csv(request, class_id):
    """One row per student: name, passed count, stuck at, then per checkpoint its state (passed,
    tried N, answered, empty) and the id of the run that passed it. Answers' text is in
    board-answers.csv, where long text with line breaks does not break the grid apart."""
    classroom = board_classroom(request.user, class_id)
    board = Board(classroom)
    header = ["username", "name", "passed", "of", "stuck at", "stuck", "last run"]
    for column in board.columns:
        header += [column.key, f"{column.key} run"]
    lines = [header]
    for row in board.rows():
        line = [
            row["username"],
            row["name"],
            row["passed"],
            row["of"],
            row["stuck_at"]["key"] if row["stuck_at"] else "",
            row["stuck_why"] if row["stuck"] else "",
            row["last_run"] or "",
        ]
        for column in board.columns:
            cell = row["cells"][column.key]
            state = cell["state"]
            line.append(f"tried {cell['tries']}" if state == "tried" else state)
            line.append(cell.get("run") or "" if state == "passed" else "")
        lines.append(line)
    return _csv_response(lines, f"{_file_stem(classroom)}-board.csv")


def board_answers_csv(request, class_id):
    """Every answer of the class's students to the questions of its sheets."""
    classroom = board_classroom(request.user, class_id)
    board = Board(classroom)
    questions = {c.key: c for c in board.columns if c.is_question}
    students = {s.pk: s for s in board.students()}
    lines = [["username", "name", "sheet", "question", "title", "answer", "updated"]]
    answers = Answer.objects.filter(user_id__in=students, sheet__in={c.sheet for c in questions.values()})
    order = {key: i for i, key in enumerate(questions)}
    answers = sorted(
        (a for a in answers if f"{a.sheet}#{a.checkpoint}" in questions),
        key=lambda a: (students[a.user_id].get_username(), order[f"{a.sheet}#{a.checkpoint}"]),
    )
    for answer in answers:
        student = students[answer.user_id]
        column = questions[f"{answer.sheet}#{answer.checkpoint}"]
        lines.append(
            [
                student.get_username(),
                student.get_full_name() or student.get_username(),
                answer.sheet,
                answer.checkpoint,
                column.checkpoint.title,
                answer.text,
                _iso(answer.updated_at),
            ]
        )
    return _csv_response(lines, f"{_file_stem(classroom)}-answers.csv")


# Delivering: the websocket --------------------------------------------------------------------


class BoardConsumer(AsyncJsonWebsocketConsumer):
    """/ws/classes/<id>/board/: a snapshot on connect, then a student's row whenever their runs
    or membership change (a "board.student" message to the class's group), and a fresh snapshot
    every REFRESH_EVERY seconds for the clock-driven stuck mark. The board only reads: the one
    action a viewer may send is {"action": "snapshot"}."""

    GONE = "no such class, or its board is not yours to see"

    async def connect(self):
        self.class_id = self.scope["url_route"]["kwargs"]["class_id"]
        self.group = group_name(self.class_id)
        self.user = self.scope.get("user")
        self.ticker = None
        await self.accept()
        if not (self.user and self.user.is_authenticated):
            await self.refuse("log in to see the board", 4401)
            return
        snapshot = await self.snapshot()
        if snapshot is None:
            await self.refuse(self.GONE, 4404)
            return
        self.joined = True
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(snapshot)
        self.ticker = asyncio.create_task(self.tick())

    async def refuse(self, message, code):
        await self.send_json({"type": "error", "message": message})
        await self.close(code=code)

    async def disconnect(self, code):
        if self.ticker:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def tick(self):
        # Through the consumer's own channel, so a snapshot is handled in order with row messages.
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            await self.channel_layer.send(self.channel_name, {"type": "board.refresh"})

    async def send_or_close(self, frame):
        # Every frame is computed after reading the class and the viewer's right to it again: an
        # instructor taken off the class (or a class deleted) stops getting its students' progress.
        if frame is None:
            if self.ticker:
                self.ticker.cancel()
            await self.refuse(self.GONE, 4404)
            return
        await self.send_json(frame)

    async def board_refresh(self, message):
        await self.send_or_close(await self.snapshot())

    async def board_student(self, message):
        student = message.get("student")
        if not isinstance(student, int) or isinstance(student, bool):
            return
        await self.send_or_close(await self.row(student))

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("action") == "snapshot":
            await self.send_or_close(await self.snapshot())
            return
        await self.send_json(
            {"type": "error", "message": 'the board is read-only; the one action is {"action": "snapshot"}'}
        )

    async def receive(self, text_data=None, bytes_data=None):
        try:
            content = json.loads(text_data or "")
        except ValueError:
            content = None
        await self.receive_json(content)

    def _board(self):
        classroom = Classroom.objects.filter(pk=self.class_id).first()
        return Board(classroom) if classroom and can_read_board(self.user, classroom) else None

    @database_sync_to_async
    def snapshot(self):
        board = self._board()
        return board.snapshot() if board else None

    @database_sync_to_async
    def row(self, student):
        board = self._board()
        return board.row_frame(student) if board else None
