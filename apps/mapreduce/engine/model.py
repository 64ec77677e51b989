"""What the coordinator knows of a job's work: its workers, its tasks, and each task's attempts."""

import time


class WorkerState:
    """A worker as the coordinator sees it: its short name (w1, w2 ...), its Celery hostname."""

    def __init__(self, name, host):
        self.name, self.host = name, host
        self.current = None  # the attempt it is running (a timed-out one too, until it reports)
        self.state = "up"
        self.kill_next = False  # an instructor killed it while idle: its next attempt dies


class Attempt:
    """One execution of a task on a worker: sent, running, then completed, failed, timed out or
    ignored (a late or duplicate one, whose output is dropped)."""

    LIVE = ("sent", "running", "timed_out")

    def __init__(self, task, n, worker, backup, fault):
        self.task, self.n, self.worker, self.backup, self.fault = task, n, worker, backup, fault
        self.state = "sent"
        self.sent = time.monotonic()
        self.started = None
        self.pid = None  # the worker process running it, from its own report
        self.w_start = self.w_end = None  # on the worker's own clock (time.time() on its host)
        self.report = {}
        self.keys = None  # its round's keys
        self.kill_requested = False  # an instructor killed its worker while it ran


class Task:
    """A map task (one split) or a reduce task (one partition), and its attempts."""

    def __init__(self, kind, index, **spec):
        self.kind, self.index = kind, index
        self.id = f"{'m' if kind == 'map' else 'r'}{index}"
        self.spec = spec
        self.attempts = []
        self.committed = None  # the committed Attempt

    def live(self, include_timed_out=False):
        states = Attempt.LIVE if include_timed_out else ("sent", "running")
        return [a for a in self.attempts if a.state in states]
