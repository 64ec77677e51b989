from celery import shared_task

from . import reaper, runner


@shared_task(name="apps.runs.tasks.execute_run")
def execute_run(run_id):
    run = runner.execute(run_id)
    return run.status if run else None


@shared_task(name="apps.runs.tasks.reap_stale_runs")
def reap_stale_runs():
    return reaper.reap_stale_runs()
