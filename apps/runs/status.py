"""The run's status frame, as sent to viewers and returned by the API."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .sinks import group_name


def status_frame(run, **extra):
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
    }
    frame.update(extra)
    return frame


def publish_status(run, **extra):
    async_to_sync(get_channel_layer().group_send)(
        group_name(run.pk), {"type": "run.status", "frame": status_frame(run, **extra)}
    )
