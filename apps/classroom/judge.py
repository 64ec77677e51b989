"""Judging runs against the lab sheets, in the process that ran them (a worker, or
`manage.py lab run`): when a run finishes, every checkpoint it meets is passed for its owner, and the
boards of the owner's classes are told to recompute the owner's row."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction

from .models import CheckpointPass, Membership
from .sheets import all_sheets

log = logging.getLogger(__name__)


def board_group(classroom_id):
    return f"board-{classroom_id}"


def checkpoints_met(run):
    """(sheet slug, checkpoint) of every sheet checkpoint the run meets, whoever owns it."""
    return [
        (sheet.slug, checkpoint)
        for sheet in all_sheets().values()
        if sheet.lab == run.lab
        for checkpoint in sheet.runs
        if checkpoint.met_by(run)
    ]


def judge_run(run):
    """Passes, for the run's owner, each checkpoint the run meets that the owner has not passed yet;
    the first passing run stands. Returns the passes it made."""
    if run.owner_id is None:
        return []
    made = []
    for slug, checkpoint in checkpoints_met(run):
        try:
            # Its own savepoint: a pass made meanwhile by another worker's run of the same user
            # breaks the unique constraint here, and leaves the outer transaction usable.
            with transaction.atomic():
                passed, created = CheckpointPass.objects.get_or_create(
                    user_id=run.owner_id, sheet=slug, checkpoint=checkpoint.id, defaults={"run": run}
                )
        except IntegrityError:
            continue
        if created:
            made.append(passed)
    return made


def tell_boards(user_id):
    """Every board of a class the user is a student of recomputes the user's row."""
    layer = get_channel_layer()
    if layer is None:
        return
    for classroom_id in Membership.objects.filter(user_id=user_id).values_list("classroom_id", flat=True):
        async_to_sync(layer.group_send)(board_group(classroom_id), {"type": "board.student", "student": user_id})


def on_run_finished(sender, run, **kwargs):
    """The run_finished receiver. The board is told after every finished run of a class member,
    passed or not: it shows attempts too."""
    if run.owner_id is None or run.is_imported:
        return
    made = judge_run(run)
    if made:
        log.info("run %s passed %s", run.pk, ", ".join(f"{p.sheet}#{p.checkpoint}" for p in made))
    tell_boards(run.owner_id)
