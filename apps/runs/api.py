"""The HTTP API of DESIGN.md "Contracts": labs, runs, their events, and run control."""

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import control, kept, transfer
from .launch import InvalidRun, QuotaExceeded, create_run, enqueue
from .models import Event, Run
from .registry import LABS, SEED
from .serializers import ControlSerializer, RunCreateSerializer, RunSerializer
from .status import publish_status

EVENTS_PAGE_MAX = 5000
NOT_YOURS = "this run is shared with you to watch; only its owner controls it"


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(str(m) for m in response.data)}
    return response


def visible_run(request, run_id):
    """The run if the user may see it; 404 otherwise, so run ids of others are not confirmed."""
    return get_object_or_404(Run.visible_runs(request.user), pk=run_id)


@api_view(["GET"])
def labs(request):
    return Response({"labs": [lab.describe() for lab in LABS.values()]})


@api_view(["GET", "POST"])
def runs(request):
    if request.method == "GET":
        qs = Run.visible_runs(request.user)
        for field in ("lab", "scenario", "status", "verdict"):
            if request.GET.get(field):
                qs = qs.filter(**{field: request.GET[field]})
        return Response({"runs": RunSerializer(qs[:100], many=True).data})
    body, seed_errors = _clean_seed(request.data)
    serializer = RunCreateSerializer(data=body)
    if not serializer.is_valid() or seed_errors:
        return Response({**serializer.errors, **seed_errors}, status=status.HTTP_400_BAD_REQUEST)
    data = serializer.validated_data
    try:
        with transaction.atomic():
            run = create_run(
                request.user, data["lab"], data["scenario"], data["params"], data["seed"], data["speed"], data["keep"]
            )
            enqueue(run)
    except QuotaExceeded as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
    except InvalidRun as exc:  # what only the owner decides, e.g. whose uploaded file it is
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    body = RunSerializer(run).data
    return Response({key: body[key] for key in ("id", "status", "url", "ws")}, status=status.HTTP_201_CREATED)


@api_view(["GET"])
def run_detail(request, run_id):
    run = visible_run(request, run_id)
    return Response(RunSerializer(run).data)


@api_view(["POST"])
def run_drop(request, run_id):
    """Drop data: a worker drops the run's kept data (web processes never touch the lab nodes)."""
    run = visible_run(request, run_id)
    if not run.controllable_by(request.user):
        return Response({"detail": NOT_YOURS}, status=status.HTTP_403_FORBIDDEN)
    if not run.keep or run.dropped_at is not None:
        detail = f"run {run.pk} kept no data" if not run.keep else f"the data of run {run.pk} is already dropped"
        return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
    if not run.is_finished:
        return Response(
            {"detail": f"the run is {run.status}; its data can be dropped when it ends"},
            status=status.HTTP_409_CONFLICT,
        )
    kept.request_drop(run)
    run.refresh_from_db()
    return Response({"accepted": "drop", "kept": RunSerializer(run).data["kept"]}, status=status.HTTP_202_ACCEPTED)


@api_view(["GET"])
def run_export(request, run_id):
    """The run as JSON lines (apps/runs/transfer.py), streamed."""
    run = visible_run(request, run_id)
    if not run.is_finished:
        return Response(
            {"detail": f"the run is {run.status}; it can be exported when it ends"}, status=status.HTTP_409_CONFLICT
        )
    # Under ASGI a sync iterator would be read whole before the first byte went out.
    asgi = isinstance(request._request, ASGIRequest)
    lines = transfer.aexport_lines(run) if asgi else transfer.export_lines(run)
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="run{run.pk}.jsonl"'
    return response


@api_view(["POST"])
@parser_classes([MultiPartParser])
def run_import(request):
    """An exported run, uploaded as the multipart field `file`, recorded as the user's own."""
    upload = request.FILES.get("file")
    if upload is None:
        message = "upload the exported run (JSON lines) as the field 'file'"
        return Response({"file": [message]}, status=status.HTTP_400_BAD_REQUEST)
    limit = settings.DISTLAB_IMPORT_LIMIT
    if upload.size > limit:
        message = f"the file is {upload.size / 2**20:.1f} MiB, more than the {limit / 2**20:.0f} MiB an import may be"
        return Response({"file": [message]}, status=status.HTTP_400_BAD_REQUEST)
    try:
        run = transfer.import_run(upload, request.user)
    except transfer.ImportRefused as exc:
        return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    body = RunSerializer(run).data
    return Response({key: body[key] for key in ("id", "status", "url", "ws")}, status=status.HTTP_201_CREATED)


@api_view(["GET"])
def run_events(request, run_id):
    run = visible_run(request, run_id)
    errors = {}
    after = _int_arg(request, "after", 0, errors)
    limit = _int_arg(request, "limit", 1000, errors, high=EVENTS_PAGE_MAX)
    if errors:
        return Response(errors, status=status.HTTP_400_BAD_REQUEST)
    events = [e.as_dict() for e in Event.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit]]
    last = events[-1]["seq"] if events else after
    return Response({"run": run.pk, "status": run.status, "events": events, "next": last, "more": len(events) == limit})


@api_view(["POST"])
def run_control(request, run_id):
    run = visible_run(request, run_id)
    if not run.controllable_by(request.user):
        return Response({"detail": NOT_YOURS}, status=status.HTTP_403_FORBIDDEN)
    serializer = ControlSerializer(data=request.data, context={"run": run})
    serializer.is_valid(raise_exception=True)
    outcome = apply_control(run, serializer.command(request.user))
    if outcome is None:
        return Response(
            {"detail": f"the run is {run.status}; it takes no more actions"}, status=status.HTTP_409_CONFLICT
        )
    return Response(outcome, status=status.HTTP_202_ACCEPTED)


def apply_control(run, command):
    """Hands a command to the run; a queued run can be stopped at once. None if the run is over."""
    if run.is_finished:
        return None
    if command["action"] == "stop" and run.status == Run.Status.QUEUED:
        if Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
            status=Run.Status.CANCELLED, failure_reason=f"stopped by {command['by']} before it started"
        ):
            run.refresh_from_db()
            publish_status(run)
            return {"accepted": "stop", "status": run.status}
    control.send(run.pk, command)
    return {"accepted": command["action"], "status": run.status}


def _clean_seed(data):
    """(the body with its seed clean, errors by field): a seed is cleaned as a parameter is, so
    its errors read like the other fields' and do not hide theirs. A null seed is no seed."""
    if not isinstance(data, dict) or "seed" not in data:
        return data, {}
    raw = data.get("seed")  # of a form's QueryDict, the last value
    body = data.copy()
    del body["seed"]
    if raw is None:
        return body, {}
    try:
        body["seed"] = SEED.clean(raw)
    except ValueError as exc:
        return body, {"seed": [str(exc)]}
    return body, {}


def _int_arg(request, name, default, errors, high=None):
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
        if value < 0 or (high is not None and value > high):
            raise ValueError
    except ValueError:
        errors[name] = [f"must be a whole number from 0{f' to {high}' if high else ''}"]
        return default
    return value
