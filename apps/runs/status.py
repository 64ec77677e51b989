"""The run's status frame, as sent to viewers and returned by the API."""

from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from .models import Run
from .sinks import group_name


def status_frame(run: Run, **extra) -> dict:
    frame = {
        "type": "status",
        "run": run.pk,
        "status": run.status,
        "verdict": run.verdict,
        "expected": run.expected,
        "speed": run.speed,
        "step": run.step,
        "events": run.events_count,
        "failure_reason": run.failure_reason,
        "stale": looks_stale(run),
    }
    if run.status == Run.Status.QUEUED:
        frame["queue"] = queue_place(run)
    frame.update(extra)
    return frame


def queue_place(run: Run) -> dict:
    """What a queued run waits for: the runs queued before it (every run goes to the same Celery
    queue, oldest first) and how many are running, i.e. holding the workers."""
    return {
        "ahead": Run.objects.filter(status=Run.Status.QUEUED, pk__lt=run.pk).count(),
        "running": Run.objects.filter(status__in=(Run.Status.RUNNING, Run.Status.PAUSED)).count(),
    }


def looks_stale(run: Run) -> bool:
    """Whether the run's worker has missed its heartbeat: what a reader may tell a viewer while the
    reaper (a Celery process, never a web one) has not failed the run yet."""
    if run.status not in (Run.Status.RUNNING, Run.Status.PAUSED) or run.heartbeat_at is None:
        return False
    return run.heartbeat_at < timezone.now() - timedelta(seconds=settings.DISTLAB_HEARTBEAT_TIMEOUT)


def publish_status(run: Run, **extra) -> None:
    # Who publishes is the run's own worker (alive, though its Run object holds the heartbeat it
    # started with), the reaper, or the API that just finished the run: never a stale run.
    extra.setdefault("stale", False)
    async_to_sync(get_channel_layer().group_send)(
        group_name(run.pk), {"type": "run.status", "frame": status_frame(run, **extra)}
    )
