"""Runs one scenario: claims the Run, builds its context, calls the engine, runs the checkers and
records the end. Used by the Celery task and by `manage.py lab run` alike."""

import json
import logging
import os
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from .context import RunContext, RunStopped
from .control import RedisControl, discard
from .kept import keep_or_clean_up
from .models import Run
from .nodes import SharedNodes
from .recorder import Recorder
from .registry import get_scenario, verdict_of
from .signals import run_finished
from .sinks import ChannelSink, DatabaseSink
from .status import publish_status

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Proves the run's worker is alive; the reaper fails runs whose heartbeat stops."""

    def __init__(self, run_id, every=2.0):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.every = every
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.wait(self.every):
                Run.objects.filter(pk=self.run_id, status__in=(Run.Status.RUNNING, Run.Status.PAUSED)).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    def stop(self):
        self.done.set()
        self.join()


def shared_nodes(run_id):
    return SharedNodes(
        run_id, mariadb_url=settings.LAB_MARIADB_URL, redis_url=settings.LAB_REDIS_URL, zk_hosts=settings.LAB_ZK_HOSTS
    )


def run_nodes(run_id, scenario, emit):
    """The shared nodes, or the dedicated ones the scenario asks for, started now for this run."""
    if not scenario.cluster:
        return shared_nodes(run_id)
    from apps.cluster.conf import supervisor
    from apps.cluster.runnodes import DedicatedNodes

    # The worker's pid marks the cluster as this run's: if the worker dies, a reaper takes it down.
    return DedicatedNodes.start(run_id, supervisor(), scenario.cluster, emit=emit, owner_pid=os.getpid())


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def run_checks(ctx, scenario, result):
    checks = []
    for inv in scenario.invariants:
        try:
            check = inv.check(ctx, result)
            held, evidence = check.held, check.evidence
        except Exception as exc:  # noqa: BLE001 - a broken checker gives "unknown", not a crash
            log.exception("checker %s failed", inv.name)
            held, evidence = None, f"the checker could not decide: {type(exc).__name__}: {exc}"
        item = {"name": inv.name, "held": held, "evidence": _jsonable(evidence), "description": inv.description}
        word = {True: "held", False: "BROKEN", None: "unknown"}[held]
        ctx.emit("check", actor="checker", label=f"{inv.name}: {word}", data=item)
        checks.append(item)
    return checks


def execute(run_id, *, extra_sinks=(), broadcast=True):
    """Runs a queued Run to its end. Returns the finished Run, or None if it was not queued."""
    close_old_connections()
    now = timezone.now()
    # The conditional update is the claim: of two workers handed the same run, only one starts it.
    if not Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING, started_at=now, heartbeat_at=now
    ):
        return None
    run = Run.objects.get(pk=run_id)
    sinks = [DatabaseSink(run.pk)]
    if broadcast:
        sinks.append(ChannelSink(run.pk))
    sinks.extend(extra_sinks)
    # The lambda looks the connection up in the writer thread, which owns its own.
    recorder = Recorder(run.pk, sinks, on_writer_exit=lambda: connection.close())
    control = RedisControl(run.pk)
    nodes = None
    heartbeat = Heartbeat(run.pk)
    heartbeat.start()

    def on_status(status, **info):
        if info.get("step") is not None:
            Run.objects.filter(pk=run.pk).update(step=info["step"])
            run.step = info["step"]
        if "speed" in info:
            Run.objects.filter(pk=run.pk).update(speed=info["speed"])
            run.speed = info["speed"]
        if status != run.status:
            Run.objects.filter(pk=run.pk, status__in=(Run.Status.RUNNING, Run.Status.PAUSED)).update(status=status)
            run.status = status
        run.events_count = recorder.seq
        publish_status(run)

    status, reason, checks, result = Run.Status.DONE, "", [], None
    ctx = None
    try:
        scenario = get_scenario(run.lab, run.scenario)
        nodes = run_nodes(run.pk, scenario, recorder.emit)
        ctx = RunContext(
            run_id=run.pk,
            params=run.params,
            seed=run.seed,
            recorder=recorder,
            nodes=nodes,
            control=control,
            time_limit=settings.DISTLAB_RUN_TIME_LIMIT,
            event_limit=settings.DISTLAB_RUN_EVENT_LIMIT,
            speed=run.speed,
            on_status=on_status,
        )
        ctx.recorded = lambda: (recorder.flush(), sinks[0].stored())[1]
        publish_status(run)
        result = scenario.engine(ctx)
        checks = run_checks(ctx, scenario, result)
    except RunStopped as stop:
        status, reason = stop.status, stop.reason
    except Exception as exc:  # noqa: BLE001 - whatever the engine raised, the run fails with the reason
        log.exception("run %s failed", run.pk)
        status, reason = Run.Status.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        try:
            if nodes is not None:
                keep_or_clean_up(run, nodes, recorder.emit)  # drops the run's data unless it is kept
        except Exception as exc:  # noqa: BLE001
            log.exception("clean-up of run %s failed", run.pk)
            reason = reason or f"clean-up failed: {type(exc).__name__}: {exc}"
        finally:
            # It beats until the nodes are down: taking a dedicated cluster down may take longer
            # than the reaper waits for a heartbeat.
            heartbeat.stop()
        control.close()
        discard(run.pk)
        verdict = verdict_of(checks) if status == Run.Status.DONE else Run.Verdict.UNKNOWN
        end = {"status": status, "verdict": verdict, "expected": run.expected, "invariants": checks}
        if reason:
            end["reason"] = reason
        final = {}
        try:
            try:
                recorder.emit("end", actor="checker", label=f"{status}: {verdict}", data=end)
            finally:
                recorder.close()
            final["events_count"] = recorder.seq
        except Exception as exc:  # noqa: BLE001 - the database went away, or the reaper ended the run
            # Events past a failed write were never stored: the database sink's count stands.
            log.exception("recording run %s failed", run.pk)
            status, verdict = Run.Status.FAILED, Run.Verdict.UNKNOWN
            reason = reason or f"recording failed: {exc}"
        close_old_connections()
        final.update(status=status, verdict=verdict, invariants=checks, failure_reason=reason)
        # Conditional: a worker that was only slow (paused past the heartbeat timeout) finds its run
        # already failed by the reaper, whose verdict and `end` event stand.
        if not Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).update(finished_at=timezone.now(), **final):
            log.warning("run %s was finished by the reaper while its worker was stalled", run.pk)
        run.refresh_from_db()
        publish_status(run)
        # A receiver's failure is logged and never fails the run: its end is already stored.
        for receiver, outcome in run_finished.send_robust(sender=Run, run=run):
            if isinstance(outcome, Exception):
                log.error("run %s: %r on run_finished failed: %r", run.pk, receiver, outcome, exc_info=outcome)
    return run
