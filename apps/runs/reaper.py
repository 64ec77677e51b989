"""Fails runs whose worker died: a run still `running` or `paused` whose heartbeat stopped."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .models import Event, Run
from .nodes import cleanup_run, leftover_run_ids
from .status import publish_status

log = logging.getLogger(__name__)


def reap_stale_runs(run_ids=None):
    timeout = settings.DISTLAB_HEARTBEAT_TIMEOUT
    cutoff = timezone.now() - timedelta(seconds=timeout)
    stale = Run.objects.filter(status__in=(Run.Status.RUNNING, Run.Status.PAUSED), heartbeat_at__lt=cutoff)
    if run_ids is not None:
        stale = stale.filter(pk__in=run_ids)
    reaped = []
    for run_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            # Row lock: a reaper on another host, or a worker that was only slow, may race for it.
            run = Run.objects.select_for_update().filter(pk=run_id, heartbeat_at__lt=cutoff).first()
            if run is None or run.is_finished:
                continue
            reason = f"the worker running this run stopped (no heartbeat for {timeout} s)"
            last = run.events.aggregate(last=Max("seq"))["last"] or 0
            end = {
                "status": "failed",
                "verdict": "unknown",
                "expected": run.expected,
                "invariants": [],
                "reason": reason,
            }
            Event.objects.create(
                run=run,
                seq=last + 1,
                t=_elapsed_ms(run),
                kind="end",
                actor="checker",
                label="failed: unknown",
                data=end,
            )
            run.status, run.verdict, run.failure_reason = Run.Status.FAILED, Run.Verdict.UNKNOWN, reason
            run.finished_at, run.events_count = timezone.now(), last + 1
            run.save(update_fields=["status", "verdict", "failure_reason", "finished_at", "events_count"])
        publish_status(run)
        _clean_up_nodes(run.pk)
        reaped.append(run.pk)
    return reaped


def clean_leftovers():
    """Removes what runs that are over (or were never recorded) left on the shared nodes: a worker
    that died mid-run never reached its clean-up. Called when a worker starts."""
    urls = {
        "mariadb_url": settings.LAB_MARIADB_URL,
        "redis_url": settings.LAB_REDIS_URL,
        "zk_hosts": settings.LAB_ZK_HOSTS,
    }
    found = leftover_run_ids(**urls)
    active = set(Run.objects.filter(pk__in=found, status__in=Run.ACTIVE).values_list("pk", flat=True))
    cleaned = sorted(found - active)
    for run_id in cleaned:
        cleanup_run(run_id, **urls)
    return cleaned


def _clean_up_nodes(run_id):
    """The dead worker never reached its clean-up: drop the run's databases, keys and znodes, and
    stop its dedicated nodes if it had any."""
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


def _elapsed_ms(run):
    return round((timezone.now() - (run.started_at or run.created_at)).total_seconds() * 1000.0, 2)
