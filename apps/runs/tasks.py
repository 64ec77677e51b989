import logging

from celery import shared_task
from celery.signals import worker_ready

from . import kept, reaper, runner


@shared_task(name="apps.runs.tasks.execute_run")
def execute_run(run_id):
    run = runner.execute(run_id)
    return run.status if run else None


@shared_task(name="apps.runs.tasks.reap_stale_runs")
def reap_stale_runs() -> list[int]:
    """The beat's reaper (CELERY_BEAT_SCHEDULE): the only periodic place runs are failed and their
    nodes taken down, on a worker's host, where dedicated nodes run; web processes never reap."""
    from apps.cluster.conf import supervisor

    reaped = reaper.reap_stale_runs()
    supervisor().reap_orphans()  # dedicated nodes whose worker died with them
    return reaped


@shared_task(name="apps.runs.tasks.drop_kept_data")
def drop_kept_data(run_id):
    """Drop data, asked for on the web: the web process only marks the run and enqueues this."""
    try:
        return kept.drop(run_id)
    except kept.DataNotKept:
        return False


@shared_task(name="apps.runs.tasks.drop_expired_data")
def drop_expired_data():
    """The beat's sweep: kept data whose 24 hours are up, and drops whose task was lost."""
    return kept.drop_expired()


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
