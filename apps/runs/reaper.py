"""Fails runs whose worker died: a run still `running` or `paused` whose heartbeat stopped.

Only Celery processes reap (the beat's periodic task and a worker that starts, see tasks.py): reaping
takes dedicated nodes down, and those run on the workers' hosts, not the web servers'. Web processes
only read, and may tell a viewer that a run looks stale (status.looks_stale).

A worker that was only slow (paused past the heartbeat timeout) and wakes up after its run was
reaped cannot undo it: the reaper writes its `end` at the seq after the last stored event, so the
worker's next write collides with the (run, seq) key and its recording stops there, and the
worker's final status update only applies to a run that is still active (runner.execute).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Event, Run
from .nodes import cleanup_run, leftover_run_ids
from .status import publish_status

log = logging.getLogger(__name__)


def reap_stale_runs() -> list[int]:
    """Fails every run whose heartbeat is older than DISTLAB_HEARTBEAT_TIMEOUT; the ids reaped."""
    timeout = settings.DISTLAB_HEARTBEAT_TIMEOUT
    reason = f"the worker running this run stopped (no heartbeat for {timeout} s)"
    cutoff = timezone.now() - timedelta(seconds=timeout)
    stale = Run.objects.filter(status__in=(Run.Status.RUNNING, Run.Status.PAUSED), heartbeat_at__lt=cutoff)
    reaped = []
    for run_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            # Row lock: a reaper on another host, or a worker that was only slow, may race for it.
            # A worker's event insert takes a shared lock on this row (the foreign key) until it
            # commits, so no batch lands between reading the last seq below and writing the end
            # after it. A row locked now is skipped, not waited for: its worker is inside a write
            # (perhaps frozen there), and waiting would hold up every other run behind it.
            run = Run.objects.select_for_update(skip_locked=True).filter(pk=run_id, heartbeat_at__lt=cutoff).first()
            if run is None or run.is_finished:
                continue
            last = run.events.order_by("-seq").first()
            if last is not None and last.kind == "end":
                # The worker recorded its end and stopped before its final status update: that stands.
                _finish(run, last.data, last.seq)
            else:
                _record_failure(run, last.seq if last else 0, reason)
        publish_status(run)
        _clean_up_nodes(run.pk)
        reaped.append(run.pk)
    return reaped


def _record_failure(run: Run, last_seq: int, reason: str) -> None:
    end = {"status": "failed", "verdict": "unknown", "expected": run.expected, "invariants": [], "reason": reason}
    Event.objects.create(
        run=run, seq=last_seq + 1, t=_elapsed_ms(run), kind="end", actor="checker", label="failed: unknown", data=end
    )
    _finish(run, end, last_seq + 1)


def _finish(run: Run, end: dict, events: int) -> None:
    run.status, run.verdict = end.get("status", Run.Status.FAILED), end.get("verdict", Run.Verdict.UNKNOWN)
    run.invariants, run.failure_reason = end.get("invariants", []), end.get("reason", "")
    run.finished_at, run.events_count = timezone.now(), events
    run.save(update_fields=["status", "verdict", "invariants", "failure_reason", "finished_at", "events_count"])


def clean_leftovers() -> list[int]:
    """Removes what runs that are over (or were never recorded) left on the shared nodes: a worker
    that died mid-run never reached its clean-up. Called when a worker starts."""
    urls = {
        "mariadb_url": settings.LAB_MARIADB_URL,
        "redis_url": settings.LAB_REDIS_URL,
        "zk_hosts": settings.LAB_ZK_HOSTS,
    }
    found = leftover_run_ids(**urls)
    active = set(Run.objects.filter(pk__in=found, status__in=Run.ACTIVE).values_list("pk", flat=True))
    # Kept runs' data stays until it is dropped or expires (apps/runs/kept.py).
    active |= set(Run.holding_data().filter(pk__in=found).values_list("pk", flat=True))
    cleaned = sorted(found - active)
    for run_id in cleaned:
        cleanup_run(run_id, **urls)
    return cleaned


def _clean_up_nodes(run_id: int) -> None:
    """The dead worker never reached its clean-up: drop the run's databases, keys and znodes, and
    stop its dedicated nodes if it had any. A run that asked to keep its data keeps none: what a
    dead worker left half-written is not what the user asked to inspect, and no reader was made."""
    from apps.cluster.conf import supervisor

    try:
        supervisor().down(f"run{run_id}", missing_ok=True)
    except Exception:  # noqa: BLE001 - reaped again by reap_orphans at the next start
        log.exception("stopping the nodes of reaped run %s failed", run_id)
    try:
        cleanup_run(
            run_id,
            mariadb_url=settings.LAB_MARIADB_URL,
            redis_url=settings.LAB_REDIS_URL,
            zk_hosts=settings.LAB_ZK_HOSTS,
        )
    except Exception:  # noqa: BLE001 - a node that is down now is cleaned at the next start
        log.exception("clean-up of reaped run %s failed", run_id)


def _elapsed_ms(run: Run) -> float:
    return round((timezone.now() - (run.started_at or run.created_at)).total_seconds() * 1000.0, 2)
