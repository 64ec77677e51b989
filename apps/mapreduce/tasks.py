"""The Celery shell of the MapReduce lab: the task a worker runs for one map or reduce attempt,
and the dispatcher the coordinator (apps/mapreduce/engine/coordinator.py) hands tasks to.

MapReduce workers are Celery workers consuming the "mapreduce" queue, kept apart from the default
queue so a run's coordinator (itself a Celery task there) never waits behind its own maps:

    celery -A labsite worker -Q mapreduce -c 1 -n mr1@%h

The coordinator assigns each task to a chosen idle worker, as the paper's master does: at the start
of a run it asks each worker (a control command) to also consume a queue of its own,
"mapreduce.<hostname>", and sends each attempt there. Workers must use the prefork pool (the
default): the worker-crash scenario SIGKILLs the pool process running a task, and Celery replaces it.
"""

import time

import redis
from celery import current_app, shared_task
from django.conf import settings
from kombu import Queue

from .engine import worker
from .engine.coordinator import NoWorkersError

QUEUE = "mapreduce"
_lab_redis = None


def lab_redis():
    """This worker's client of the lab Redis (LAB_REDIS_URL on its own host), kept per process."""
    global _lab_redis
    if _lab_redis is None:
        _lab_redis = redis.Redis.from_url(settings.LAB_REDIS_URL, socket_timeout=30, socket_connect_timeout=10)
    return _lab_redis


@shared_task(name="apps.mapreduce.tasks.run_task_attempt", ignore_result=True)
def run_task_attempt(spec):
    return worker.run_attempt(spec, lab_redis(), run_task_attempt.request.hostname)


def direct_queue(host):
    return f"{QUEUE}.{host}"


class CeleryDispatcher:
    def __init__(self, app=None, timeout=1.0, queue=QUEUE):
        self.app = app or current_app
        self.queue = queue
        self.timeout = timeout
        self.queues = {}

    def workers(self):
        """The hostnames of the running workers that consume the mapreduce queue."""
        replies = self.app.control.inspect(timeout=self.timeout).active_queues() or {}
        self.queues = {host: {q.get("name") for q in queues or ()} for host, queues in replies.items()}
        return sorted(host for host, names in self.queues.items() if self.queue in names)

    def prepare(self, hosts):
        """Makes each worker consume its own queue too, so that a task goes to the worker chosen."""
        added = False
        for host in hosts:
            if direct_queue(host) in self.queues.get(host, ()):
                continue
            replies = self.app.control.add_consumer(direct_queue(host), destination=[host], reply=True, timeout=5)
            if not replies:
                raise NoWorkersError(f"the MapReduce worker {host} did not answer")
            added = True
        if added:
            # A worker blocked in BRPOP on its old queues listens to a new one from its next poll,
            # up to a second later; without this wait its first task would look a second slow.
            time.sleep(1.2)

    def send(self, host, spec):
        queue = Queue(direct_queue(host))
        with self.app.producer_or_acquire() as producer:
            # Declared on every send (a few Redis commands): the binding may have been dropped since
            # the producer first declared it, and a message to an unbound queue would be lost.
            queue(producer.channel).declare()
            run_task_attempt.apply_async(args=[spec], queue=direct_queue(host), producer=producer)
