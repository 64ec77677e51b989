"""The lab sheets' pages: every sheet with the user's progress, one sheet with the state of each
checkpoint for the user, and saving a question's answer (page form and JSON endpoint)."""

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.runs.models import Run
from apps.runs.registry import LABS

from .models import Answer, CheckpointPass
from .sheets import all_sheets, get_sheet

ANSWER_MAX = 5000


def sheet_or_404(lab, name):
    try:
        return get_sheet(f"{lab}/{name}")
    except LookupError:
        raise Http404(f"no lab sheet {lab}/{name}") from None


def progress(user, sheets):
    """{slug: (passed, of)}: run checkpoints passed and questions answered, of all the sheet's."""
    passed = set(CheckpointPass.objects.filter(user=user).values_list("sheet", "checkpoint"))
    passed |= set(Answer.objects.filter(user=user).values_list("sheet", "checkpoint"))
    return {s.slug: (sum((s.slug, c.id) in passed for c in s.checkpoints), len(s.checkpoints)) for s in sheets}


def sheets_page(request):
    sheets = list(all_sheets().values())
    done = progress(request.user, sheets)
    by_lab = {}
    for sheet in sheets:
        by_lab.setdefault(sheet.lab, []).append((sheet, *done[sheet.slug]))
    groups = [(LABS[lab].title if lab in LABS else lab, items) for lab, items in by_lab.items()]
    return render(request, "classroom/sheets.html", {"groups": groups})


def checkpoint_states(user, sheet):
    """Per checkpoint, what its card shows: passed (and by which run), tried (the latest run of its
    scenario and why it did not meet it), answered, or not started."""
    passes = {p.checkpoint: p for p in CheckpointPass.objects.filter(user=user, sheet=sheet.slug)}
    answers = {a.checkpoint: a for a in Answer.objects.filter(user=user, sheet=sheet.slug)}
    latest = {}
    scenarios = {c.scenario for c in sheet.runs}
    for run in Run.objects.filter(
        owner=user, lab=sheet.lab, scenario__in=scenarios, imported_from__isnull=True
    ).order_by("-id")[:200]:
        if run.is_finished:
            latest.setdefault(run.scenario, run)
    states = {}
    for c in sheet.checkpoints:
        if c.is_question:
            answer = answers.get(c.id)
            states[c.id] = {"state": "answered" if answer else "not-started", "answer": answer}
        elif c.id in passes:
            states[c.id] = {"state": "passed", "pass": passes[c.id]}
        elif c.scenario in latest:
            run = latest[c.scenario]
            states[c.id] = {"state": "tried", "run": run, "reason": c.judge_run(run)[1]}
        else:
            states[c.id] = {"state": "not-started"}
        states[c.id]["start"] = (
            f"{reverse('lab-page', args=[sheet.lab])}#scenario-{c.scenario}" if not c.is_question else ""
        )
    return states


def sheet_page(request, lab, name, answer_form=None, status=200):
    sheet = sheet_or_404(lab, name)
    states = checkpoint_states(request.user, sheet)
    parts = []
    for prose, checkpoint in sheet.parts:
        if checkpoint is None:
            parts.append({"html": prose})
        else:
            parts.append({"checkpoint": checkpoint, **states[checkpoint.id]})
    if answer_form is not None:
        for part in parts:
            if part.get("checkpoint") and part["checkpoint"].id == answer_form.data.get("checkpoint"):
                part["form"] = answer_form
    done = progress(request.user, [sheet])[sheet.slug]
    context = {"sheet": sheet, "parts": parts, "done": done[0], "total": done[1], "answer_max": ANSWER_MAX}
    return render(request, "classroom/sheet.html", context, status=status)


class AnswerForm(forms.Form):
    checkpoint = forms.CharField(max_length=80)
    text = forms.CharField(max_length=ANSWER_MAX, strip=True)


def save_answer(user, sheet, checkpoint_id, text):
    checkpoint = sheet.checkpoint(checkpoint_id)
    if not checkpoint.is_question:
        raise LookupError(f"{checkpoint_id} is a run checkpoint: it is passed by a run, not answered")
    answer, _ = Answer.objects.update_or_create(
        user=user, sheet=sheet.slug, checkpoint=checkpoint.id, defaults={"text": text}
    )
    return answer


@require_POST
def sheet_answer(request, lab, name):
    sheet = sheet_or_404(lab, name)
    form = AnswerForm(request.POST)
    if form.is_valid():
        try:
            save_answer(request.user, sheet, form.cleaned_data["checkpoint"], form.cleaned_data["text"])
        except LookupError as exc:
            form.add_error("checkpoint", str(exc))
    if not form.is_valid():
        return sheet_page(request, lab, name, answer_form=form, status=400)
    messages.success(request, "Your answer is saved.")
    return redirect(f"{reverse('sheet-page', args=[lab, name])}#checkpoint-{form.cleaned_data['checkpoint']}")


class AnswerSerializer(serializers.Serializer):
    checkpoint = serializers.CharField(max_length=80)
    text = serializers.CharField(max_length=ANSWER_MAX)


@api_view(["POST"])
def api_sheet_answer(request, lab, name):
    try:
        sheet = get_sheet(f"{lab}/{name}")
    except LookupError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
    serializer = AnswerSerializer(data=request.data)
    if not serializer.is_valid():
        return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
    try:
        answer = save_answer(
            request.user, sheet, serializer.validated_data["checkpoint"], serializer.validated_data["text"]
        )
    except LookupError as exc:
        return Response({"checkpoint": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    return Response(
        {"sheet": sheet.slug, "checkpoint": answer.checkpoint, "text": answer.text, "updated_at": answer.updated_at}
    )
