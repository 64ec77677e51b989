"""Kept data: a run started with `keep` leaves its databases, keys and znodes on the shared nodes
when it ends, with a read-only login of its own, until its owner drops them or KEEP_FOR passes.

Keeping and dropping touch the lab nodes, so they happen in workers (the run's own, a Celery task,
the beat) and in the `lab` command. Web processes only read the Run and ask a worker to drop.
"""

import logging
import secrets
import shlex
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Run
from .nodes import SharedNodes, cleanup_run, create_run_reader, drop_run_reader, mysql_params, run_inventory

log = logging.getLogger(__name__)

KEEP_FOR = timedelta(hours=24)
# Kept runs per user at once (and for the command line, which runs as no user): kept data holds
# space on servers every class shares.
KEEP_LIMIT = 5


class DataNotKept(Exception):
    """The run has no kept data to drop, or not yet."""


def node_urls() -> dict[str, str]:
    return {
        "mariadb_url": settings.LAB_MARIADB_URL,
        "redis_url": settings.LAB_REDIS_URL,
        "zk_hosts": settings.LAB_ZK_HOSTS,
    }


def keeper_url() -> str:
    """The MariaDB account that creates and drops the readers (bin/services creates `keeper`). Only
    this module uses it: the engines are handed the `lab` account alone."""
    if settings.LAB_MARIADB_KEEPER_URL:
        return settings.LAB_MARIADB_KEEPER_URL
    lab = urlparse(settings.LAB_MARIADB_URL)
    return f"mysql://keeper:keeper@{lab.hostname or '127.0.0.1'}:{lab.port or 3306}/"


def keep_limit_reached(owner) -> str | None:
    """Why `owner` (None: the command line) may not keep one more run's data, or None if it may."""
    runs = Run.holding_data().filter(**({"owner": owner} if owner is not None else {"owner__isnull": True}))
    count = runs.count()
    if count < KEEP_LIMIT:
        return None
    return (
        f"you already keep the data of {count} runs, the limit is {KEEP_LIMIT}: "
        "drop one first (Drop data on its page, or `lab drop RUN`)"
    )


def keep_or_clean_up(run: Run, nodes: Any, emit) -> None:
    """The end of a run (apps/runs/runner.py): keeps the data of a run that asked for it, drops it
    otherwise. Dedicated nodes are stopped whatever was asked; launch refuses `keep` for them."""
    if not (run.keep and isinstance(nodes, SharedNodes)):
        nodes.cleanup()
        return
    nodes.close()
    password = secrets.token_hex(16)
    try:
        user = create_run_reader(run.pk, password, keeper_url=keeper_url(), redis_url=settings.LAB_REDIS_URL)
        inventory = run_inventory(run.pk, **node_urls())
    except Exception as exc:  # noqa: BLE001 - data nobody can read safely is not left behind
        log.exception("keeping the data of run %s failed", run.pk)
        nodes.cleanup()
        try:
            drop_run_reader(run.pk, keeper_url=keeper_url(), redis_url=settings.LAB_REDIS_URL)
        except Exception:  # noqa: BLE001 - the reader was never made, or the keeper cannot log in
            log.exception("dropping the half-made reader of run %s failed", run.pk)
        Run.objects.filter(pk=run.pk).update(dropped_at=timezone.now(), kept={"error": f"{type(exc).__name__}: {exc}"})
        emit("log", actor="platform", label=f"the data could not be kept ({exc}); it was dropped")
        return
    until = timezone.now() + KEEP_FOR
    Run.objects.filter(pk=run.pk).update(kept={"user": user, "password": password, **inventory}, kept_until=until)
    # The event says what was kept, never the password: events are exported and shown to viewers.
    emit(
        "log",
        actor="platform",
        label=f"data kept until {until:%Y-%m-%d %H:%M} UTC: {len(inventory['databases'])} databases, "
        f"{inventory['keys']} keys, {inventory['znodes']} znodes",
        data={"kept_until": until.isoformat(), **inventory},
    )


def drop(run_id: int) -> bool:
    """Drops a kept run's data and its reader login. True if this call dropped them; False if they
    were already gone. Raises DataNotKept for a run that kept nothing or is still going."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None or not run.keep:
        raise DataNotKept(f"run {run_id} kept no data")
    if run.dropped_at is not None:
        return False
    if run.status in Run.ACTIVE:
        raise DataNotKept(f"run {run_id} is still {run.status}; its data can be dropped when it ends")
    _drop_everything(run.pk)
    record = {k: v for k, v in run.kept.items() if k != "password"}
    # Conditional: of a Drop data task and the beat dropping the same run, one records it.
    return bool(Run.objects.filter(pk=run.pk, dropped_at__isnull=True).update(dropped_at=timezone.now(), kept=record))


def drop_expired(now: datetime | None = None) -> list[int]:
    """Drops the data of every kept run whose time is up (and of those whose owner asked)."""
    now = now or timezone.now()
    dropped = []
    for run_id in Run.holding_data().filter(kept_until__lte=now).values_list("pk", flat=True):
        try:
            if drop(run_id):
                dropped.append(run_id)
        except Exception:  # noqa: BLE001 - one node down must not keep the others' data forever
            log.exception("dropping the kept data of run %s failed", run_id)
    return dropped


def request_drop(run: Run) -> None:
    """The web side of Drop data: marks the data as expired, so the beat drops it even if the task
    is lost, and asks a worker to drop it now."""
    from .tasks import drop_kept_data

    Run.objects.filter(pk=run.pk, dropped_at__isnull=True).update(kept_until=timezone.now())
    transaction.on_commit(lambda: drop_kept_data.delay(run.pk))


def describe(run: Run, now: datetime | None = None) -> dict | None:
    """A kept run's state for its owner: pending (still going), kept (with the commands to inspect
    it), dropping, dropped, or none (it ended before anything could be kept). None without keep."""
    if not run.keep:
        return None
    now = now or timezone.now()
    if run.dropped_at is not None:
        info = {"state": "dropped", "dropped_at": run.dropped_at}
        if run.kept.get("error"):
            info["detail"] = f"the data could not be kept: {run.kept['error']}"
        return info
    if run.status in Run.ACTIVE:
        return {"state": "pending", "detail": "the data is kept when the run ends"}
    if run.kept_until is None:
        return {"state": "none", "detail": "the run ended before its data could be kept"}
    if run.kept_until <= now:
        return {"state": "dropping", "detail": "the data is being dropped"}
    kept = run.kept
    return {
        "state": "kept",
        "kept_until": run.kept_until,
        "databases": kept["databases"],
        "keys": kept["keys"],
        "znodes": kept["znodes"],
        "user": kept["user"],
        "password": kept["password"],
        "commands": commands(run),
    }


def commands(run: Run) -> dict[str, list[str]]:
    """The standard clients' command lines that read the run's kept data with its own login."""
    user, password = run.kept["user"], run.kept["password"]
    db = mysql_params(settings.LAB_MARIADB_URL)
    login = ["mariadb", "-h", db["host"], "-P", str(db["port"]), "-u", user, f"-p{password}"]
    mariadb = [shlex.join([*login, name]) for name in run.kept["databases"]] or [shlex.join(login)]
    r = urlparse(settings.LAB_REDIS_URL)
    redis_cli = ["redis-cli", "-h", r.hostname or "127.0.0.1", "-p", str(r.port or 6379)]
    if r.path.strip("/") not in ("", "0"):
        redis_cli += ["-n", r.path.strip("/")]
    redis_cli += ["--user", user, "--pass", password, "--no-auth-warning", "--scan", "--pattern", f"run{run.pk}:*"]
    zk = ["zkCli.sh", "-server", settings.LAB_ZK_HOSTS, "ls", "-R", f"/distlab/run{run.pk}"]
    return {"mariadb": mariadb, "redis": [shlex.join(redis_cli)], "zookeeper": [shlex.join(zk)]}


def _drop_everything(run_id: int) -> None:
    drop_run_reader(run_id, keeper_url=keeper_url(), redis_url=settings.LAB_REDIS_URL)
    cleanup_run(run_id, **node_urls())
