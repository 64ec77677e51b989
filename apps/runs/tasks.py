import logging

from celery import shared_task
from celery.signals import worker_ready

from . import reaper, runner


@shared_task(name="apps.runs.tasks.execute_run")
def execute_run(run_id):
    run = runner.execute(run_id)
    return run.status if run else None


@shared_task(name="apps.runs.tasks.reap_stale_runs")
def reap_stale_runs():
    from apps.cluster.conf import supervisor

    reaped = reaper.reap_stale_runs()
    supervisor().reap_orphans()  # dedicated nodes whose worker died with them
    return reaped


@worker_ready.connect
def clean_up_after_a_crash(**kwargs):
    """A worker starting is the moment to fail the runs a dead worker left behind and to drop what
    they left on the nodes."""
    from apps.cluster.conf import supervisor

    try:
        reaper.reap_stale_runs()
        reaper.clean_leftovers()
        supervisor().reap_orphans()
    except Exception:  # noqa: BLE001 - a node being down must not stop the worker from starting
        logging.getLogger(__name__).exception("start-up clean-up failed")
