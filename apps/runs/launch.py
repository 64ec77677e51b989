"""Starting runs: validation against the scenario, the per-user quota, and the hand-off to Celery."""

import random

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from .kept import keep_limit_reached
from .models import Run
from .registry import get_scenario


class QuotaExceeded(Exception):
    pass


class InvalidRun(Exception):
    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def validate(lab, scenario, params, seed=None):
    """Returns (scenario, clean params, seed) or raises InvalidRun with a message per field."""
    try:
        sc = get_scenario(lab, scenario)
    except LookupError as exc:
        field = "lab" if str(exc).startswith("unknown lab") else "scenario"
        raise InvalidRun({field: [str(exc)]}) from None
    clean, errors = sc.validate(params)
    if errors:
        raise InvalidRun({"params": errors})
    if sc.cluster:
        from apps.cluster.conf import supervisor
        from apps.cluster.supervisor import ClusterError

        try:
            # Only the node counts say whether local servers can be started; `options` (server
            # settings) go with the start itself.
            supervisor().require(**{kind: n for kind, n in sc.cluster.items() if kind != "options"})
        except ClusterError as exc:
            raise InvalidRun({"scenario": [f"{scenario} runs on dedicated nodes: {exc}"]}) from None
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    return sc, clean, seed


def create_run(owner, lab, scenario, params=None, seed=None, speed=0.0, keep=False):
    """A queued Run of `owner` (None: the command line); `keep` leaves its data for inspection."""
    sc, clean, seed = validate(lab, scenario, params, seed)
    if sc.owner_check is not None and (errors := sc.owner_check(owner, clean)):
        raise InvalidRun({"params": errors})
    if keep and sc.cluster:
        # Dedicated nodes are stopped and their data directories removed when the run ends (and
        # reaped if its worker dies); keeping them would hold processes under the global cap.
        why = f"{scenario} runs on dedicated nodes, which are removed when the run ends: its data cannot be kept"
        raise InvalidRun({"keep": [why]})
    with transaction.atomic():
        if owner is not None:
            # Lock the owner's row so two simultaneous requests cannot both slip under the quota.
            get_user_model().objects.select_for_update().get(pk=owner.pk)
            active = Run.objects.filter(owner=owner, status__in=Run.ACTIVE).count()
            quota = settings.DISTLAB_RUN_QUOTA
            if active >= quota:
                raise QuotaExceeded(f"you already have {active} runs going; the limit is {quota} at once")
        if keep and (reason := keep_limit_reached(owner)):
            raise QuotaExceeded(reason)
        run = Run.objects.create(
            owner=owner,
            lab=lab,
            scenario=scenario,
            params=clean,
            seed=seed,
            speed=speed,
            expected=sc.expected,
            keep=keep,
        )
    return run


def enqueue(run):
    from .tasks import execute_run

    transaction.on_commit(lambda: execute_run.delay(run.pk))
