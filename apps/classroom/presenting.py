"""Presenting a run to a class: the instructor's playback position, mirrored by every follower.

Starting and ending a presentation (this module's service functions and the two JSON endpoints)
happen in a web request and are saved at once; the view frames that follow travel over
/ws/presentations/<id>/ (consumers.py). The class's members hear about presentations starting and
ending on the classroom-<id> group, whatever page they are on (the banner).
"""

import logging
import math

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.runs.models import Run

from .models import Classroom, Presentation, share_run

logger = logging.getLogger(__name__)

ONLY_INSTRUCTORS_PRESENT = "only the class's instructors present to it"
ONLY_INSTRUCTORS_END = "only the class's instructors end its presentations"
ONLY_THE_PRESENTER = "only the presenter steers this presentation"
ALREADY_ENDED = "this presentation has already ended"
RATES = (0.25, 0.5, 1.0, 2.0, 4.0)
HIGHLIGHT_MAX = 200
# The view a presentation starts with: the run as it happens.
FIRST_VIEW = {"k": 0, "live": True, "playing": False, "rate": 1.0, "highlight": None}


def class_group(classroom_id):
    return f"classroom-{classroom_id}"


def presentation_group(presentation_id):
    return f"presentation-{presentation_id}"


def describe(presentation):
    """What the banner and the follower's page show of a presentation."""
    run = presentation.run
    return {
        "id": presentation.pk,
        "class": {"id": presentation.classroom_id, "name": presentation.classroom.name},
        "run": {"id": run.pk, "lab": run.lab, "scenario": run.scenario, "status": run.status},
        "presenter": {"id": presentation.presenter_id, "name": presentation.presenter.get_username()},
        "follow_url": f"/runs/{run.pk}/?follow={presentation.pk}",
        "ws": f"/ws/presentations/{presentation.pk}/",
        "view": {**FIRST_VIEW, **(presentation.view or {})},
        "started_at": presentation.started_at.isoformat() if presentation.started_at else None,
        "ended": presentation.ended_at is not None,
    }


def live_presentations(classrooms):
    """The presentations on now in the given classes, newest first."""
    return list(
        Presentation.objects.filter(classroom__in=classrooms, ended_at__isnull=True).select_related(
            "classroom", "run", "presenter"
        )
    )


# The layer of a presentation's own group (view frames and its end); the class's banner group is on
# the default layer.
PRESENTATIONS_LAYER = "presentations"


def _tell(group, message, layer="default"):
    try:
        async_to_sync(get_channel_layer(layer).group_send)(group, message)
    except Exception:
        # The presentation is saved whatever happens here; a page that missed the news gets the
        # live presentations when it next connects.
        logger.warning("could not tell %s about a presentation", group, exc_info=True)


def _announce_start(presentation):
    _tell(class_group(presentation.classroom_id), {"type": "classroom.started", "presentation": describe(presentation)})


def _announce_end(presentation):
    said = {"id": presentation.pk, "class": presentation.classroom_id, "run": presentation.run_id}
    _tell(class_group(presentation.classroom_id), {"type": "classroom.ended", "presentation": said})
    _tell(
        presentation_group(presentation.pk), {"type": "presentation.ended", "presentation": said}, PRESENTATIONS_LAYER
    )


def start_presentation(classroom, run, user):
    """(the new Presentation, the ones it replaced): at most one presentation is live per class,
    so whatever the class was being shown ends. The run is shared with the class (followers watch
    it through its own stream)."""
    with transaction.atomic():
        # The class's row lock takes presenters one at a time: two instructors pressing "Present"
        # together leave one live presentation, not two.
        Classroom.objects.select_for_update().filter(pk=classroom.pk).exists()
        replaced = list(
            Presentation.objects.select_for_update()
            .filter(classroom=classroom, ended_at__isnull=True)
            .select_related("classroom", "run", "presenter")
        )
        now = timezone.now()
        for old in replaced:
            old.ended_at = now
            old.save(update_fields=["ended_at", "updated_at"])
        share_run(classroom, run, user)
        presentation = Presentation.objects.create(classroom=classroom, run=run, presenter=user, view=dict(FIRST_VIEW))
        presentation = Presentation.objects.select_related("classroom", "run", "presenter").get(pk=presentation.pk)

        def announce():
            for old in replaced:
                _announce_end(old)
            _announce_start(presentation)

        transaction.on_commit(announce)
    return presentation, replaced


def end_presentation(presentation):
    """Ends a live presentation; False if it had already ended."""
    with transaction.atomic():
        ended = Presentation.objects.filter(pk=presentation.pk, ended_at__isnull=True).update(
            ended_at=timezone.now(), updated_at=timezone.now()
        )
        if ended:
            transaction.on_commit(lambda: _announce_end(presentation))
    return bool(ended)


def end_idle_presentations(idle):
    """Ends the live presentations whose presenter has not moved the view for `idle` (a
    timedelta): an instructor who closed the tab leaves no banner on the students' pages for
    ever. The beat runs this (tasks.py); returns the ids ended."""
    cutoff = timezone.now() - idle
    ended = []
    stale = Presentation.objects.filter(ended_at__isnull=True, updated_at__lt=cutoff).select_related(
        "classroom", "run", "presenter"
    )
    for presentation in stale:
        # end_presentation's conditional update: a view that came in meanwhile does not matter,
        # one presentation is ended once.
        if end_presentation(presentation):
            ended.append(presentation.pk)
    return ended


def clean_view(content):
    """(view, None) for a well-formed view frame from the presenter, (None, field errors) otherwise."""
    errors = {}
    k = content.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < 2**40:
        errors["k"] = ["a whole number of events, 0 or more"]
    flags = {}
    for name in ("live", "playing"):
        value = content.get(name, False)
        if not isinstance(value, bool):
            errors[name] = ["true or false"]
        flags[name] = value
    rate = content.get("rate", 1)
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or float(rate) not in RATES
    ):
        errors["rate"] = [f"one of {', '.join(f'{r:g}' for r in RATES)}"]
    highlight = content.get("highlight")
    if highlight is not None and (not isinstance(highlight, str) or not 0 < len(highlight) <= HIGHLIGHT_MAX):
        errors["highlight"] = [f"null, or the data-hl of an element (at most {HIGHLIGHT_MAX} characters)"]
    if errors:
        return None, errors
    return {
        "k": k,
        "live": flags["live"],
        "playing": flags["playing"],
        "rate": float(rate),
        "highlight": highlight,
    }, None


def store_view(presentation_id, presenter_id, view):
    """Saves the presenter's latest view; False when the presentation is no longer live (or not theirs)."""
    return bool(
        Presentation.objects.filter(pk=presentation_id, presenter_id=presenter_id, ended_at__isnull=True).update(
            view=view, updated_at=timezone.now()
        )
    )


# JSON ------------------------------------------------------------------------------------------


class PresentSerializer(serializers.Serializer):
    run = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


def _not_found(what):
    return Response({"detail": f"no {what} that you may see"}, status=status.HTTP_404_NOT_FOUND)


@api_view(["POST"])
def api_present(request, class_id):
    """{"run"} → 201 with the presentation. Ends the class's live presentation, if any."""
    classroom = Classroom.visible_to(request.user).filter(pk=class_id).first()
    if classroom is None:
        return _not_found("such class")
    if not classroom.taught_by(request.user):
        return Response({"detail": ONLY_INSTRUCTORS_PRESENT}, status=status.HTTP_403_FORBIDDEN)
    serializer = PresentSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    run_id = serializer.validated_data["run"]
    run = Run.visible_runs(request.user).filter(pk=run_id).first()
    if run is None:
        return Response({"run": [f"no run #{run_id} that you may see"]}, status=status.HTTP_400_BAD_REQUEST)
    presentation, replaced = start_presentation(classroom, run, request.user)
    body = {"presentation": describe(presentation), "ended": [p.pk for p in replaced]}
    return Response(body, status=status.HTTP_201_CREATED)


@api_view(["POST"])
def api_end(request, presentation_id):
    """Ends a presentation: 200, or 400 when it had already ended."""
    presentation = (
        Presentation.objects.filter(pk=presentation_id, classroom__in=Classroom.visible_to(request.user))
        .select_related("classroom", "run", "presenter")
        .first()
    )
    if presentation is None:
        return _not_found("such presentation")
    if not presentation.classroom.taught_by(request.user):
        return Response({"detail": ONLY_INSTRUCTORS_END}, status=status.HTTP_403_FORBIDDEN)
    if not end_presentation(presentation):
        return Response({"detail": ALREADY_ENDED}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"presentation": presentation.pk, "ended": True}, status=status.HTTP_200_OK)
