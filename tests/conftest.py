"""Fixtures shared by the whole suite. Every test runs against the real MariaDB, Redis and
ZooKeeper that `make test` starts; processes a test starts (Celery workers, daphne) are stopped
by the fixture that started them, whatever the test's outcome, and those the session shares (the
live stack, the MapReduce workers) when the session ends."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from apps.cluster import procs
from apps.cluster.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {"alice": "labdemo-alice-pw", "bob": "labdemo-bob-pw", "charlie": "labdemo-charlie-pw"}


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory):
    """A node supervisor of the module's own, in a folder of its own; every node it started is gone
    when the module ends, whatever its tests did."""
    nodes_dir = tmp_path_factory.mktemp("nodes")
    sup = Supervisor(nodes_dir, cap=12)
    yield sup
    sup.down_all()
    sup.reap_orphans()
    assert procs.processes_under(nodes_dir) == {}, "a node process outlived its test module"


@pytest.fixture
def student_user(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORDS["alice"])


@pytest.fixture
def other_student(django_user_model):
    return django_user_model.objects.create_user("bob", password=PASSWORDS["bob"])


@pytest.fixture
def instructor(django_user_model):
    return django_user_model.objects.create_user("charlie", password=PASSWORDS["charlie"], is_staff=True)


def session_cookie(user):
    """The cookie of a fresh logged-in session, as a browser that signed in would send it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}"


@pytest.fixture(autouse=True)
def _clean_control_redis():
    """Each test starts with no queued tasks and no pending run commands from an earlier one. The
    queues' bindings stay: a worker that lives on from an earlier test (the shared live stack, the
    MapReduce workers) declared them once, and without them what is sent to its queue is lost."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    stale = [key for key in client.scan_iter() if not key.startswith(b"_kombu.binding.")]
    if stale:
        client.delete(*stale)
    redis.Redis.from_url(settings.CONTROL_REDIS_URL).flushdb()
    yield


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**extra):
    """The environment of a child process that must use the test database, not the dev one."""
    from django.db import connection

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/"
        f"{connection.settings_dict['NAME']}"
    )
    env["DJANGO_SETTINGS_MODULE"] = "labsite.settings.test"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Process:
    """A child process in its own process group, so stopping it stops all it started."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self):
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=15):
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        self.kill(signal.SIGKILL)  # anything left in the group
        self.log.close()

    def output(self):
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_until(predicate, timeout, what, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what} after {timeout} s")


def start_worker(tmp_path, name="worker", shared=False, **env):
    """A Celery worker on the default queue. A test's own worker (not `shared`) is the only one:
    the shared live stack is stopped first, so no other worker can take the test's runs."""
    if not shared:
        stop_shared_stack()
    argv = [sys.executable, "-m", "celery", "-A", "labsite", "worker", "--concurrency=1", "--loglevel=INFO"]
    argv += ["-n", f"{name}-{os.getpid()}@%h", "--without-mingle", "--without-gossip"]
    worker = Process(name, argv, subprocess_env(**env), tmp_path)
    from labsite.celery import app

    def answered():
        if not worker.alive():
            raise AssertionError(f"the Celery worker exited:\n{worker.output()}")
        replies = app.control.ping(destination=[f"{name}-{os.getpid()}@{socket.gethostname()}"], timeout=0.5)
        return bool(replies)

    wait_until(answered, 60, "the Celery worker to answer")
    return worker


class LiveStack:
    """A Celery worker, and daphne serving the site on a port of its own once `start_web` is called."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = None
        self.worker = start_worker(tmp_path, shared=True)
        self.worker_name = f"worker-{os.getpid()}@{socket.gethostname()}"

    def start_web(self):
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "labsite.asgi:application"]
        self.web = Process("daphne", argv, subprocess_env(), self.tmp_path)

        def answers():
            if not self.web.alive():
                raise AssertionError(f"daphne exited:\n{self.web.output()}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_until(answers, 30, "daphne to listen")

    def restart_web(self):
        self.web.stop()
        self.start_web()

    def alive(self):
        return self.worker.alive() and (self.web is None or self.web.alive())

    def consume(self, on):
        """Has the worker take tasks from the default queue (on) or leave them (off), and says
        whether it confirmed. Between the tests that ask for it the worker takes nothing: a test
        that runs a queued run in its own process must find it still queued."""
        from labsite.celery import app

        control = app.control.add_consumer if on else app.control.cancel_consumer
        return bool(control("celery", destination=[self.worker_name], reply=True, timeout=5))

    def settle(self, timeout=30):
        """Ends what a test left going, so the next test finds the worker idle: tasks not yet taken
        are dropped, runs still queued or going are stopped as a user would stop them, and the
        worker is asked until it has nothing active or reserved. False if it never got there."""
        from apps.runs.api import apply_control
        from apps.runs.models import Run
        from labsite.celery import app

        if not (self.alive() and self.consume(False)):
            return False
        stopped = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")  # the default queue
            for run in Run.objects.filter(status__in=Run.ACTIVE).exclude(pk__in=stopped):
                apply_control(run, {"action": "stop", "by": "the end of the test"})
                stopped.add(run.pk)
            inspect = app.control.inspect(destination=[self.worker_name], timeout=2, limit=1)
            active, reserved = inspect.active(), inspect.reserved()
            if active is not None and reserved is not None:
                if not any(active.values()) and not any(reserved.values()):
                    return True
            time.sleep(0.2)
        return False

    def stop(self):
        for process in (self.web, self.worker):
            if process:
                process.stop()


# One live stack for the whole session: starting a worker and daphne for every test that needs
# them was most of those tests' time. After each such test it is settled (above) and its worker
# stops taking tasks; before the next it is cleaned up as a starting worker cleans up, and takes
# tasks again. A test that starts workers of its own stops it first.
_shared_stack = None


def stop_shared_stack():
    global _shared_stack
    if _shared_stack is not None:
        _shared_stack.stop()
        _shared_stack = None


@pytest.fixture(scope="session")
def _live_stack_dirs(django_db_setup, tmp_path_factory):
    """Where the shared stack's processes log; they are stopped before the test database goes."""
    yield tmp_path_factory
    stop_shared_stack()


def shared_stack(log_dirs):
    """The session's live stack, started if it is not running; else cleaned up as a starting
    worker cleans up (runs a dead worker left, leftovers on the nodes, orphaned dedicated nodes)."""
    global _shared_stack
    if _shared_stack is not None and not _shared_stack.alive():
        stop_shared_stack()
    if _shared_stack is None:
        _shared_stack = LiveStack(log_dirs.mktemp("live-stack"))
    else:
        from apps.runs.tasks import clean_up_after_a_crash

        clean_up_after_a_crash()
        if not _shared_stack.consume(True):
            stop_shared_stack()
            _shared_stack = LiveStack(log_dirs.mktemp("live-stack"))
    return _shared_stack


def settle_shared_stack():
    if _shared_stack is not None and not _shared_stack.settle():
        stop_shared_stack()  # the next test starts a fresh one


@pytest.fixture
def celery_worker(transactional_db, _live_stack_dirs):
    """A Celery worker on the default queue (the shared live stack's)."""
    stack = shared_stack(_live_stack_dirs)
    yield stack.worker
    settle_shared_stack()


@pytest.fixture
def live_stack(transactional_db, _live_stack_dirs):
    """A Celery worker and daphne serving the site at `live_stack.url` (the shared live stack)."""
    stack = shared_stack(_live_stack_dirs)
    if stack.web is None or not stack.web.alive():
        stack.start_web()
    yield stack
    settle_shared_stack()


def start_mapreduce_workers(log_dir, count=2):
    """Real MapReduce workers (Celery, prefork, one process each) on the mapreduce queue."""
    from labsite.celery import app

    names = [f"mr{i}-{os.getpid()}" for i in range(1, count + 1)]
    workers = []
    for name in names:
        argv = [sys.executable, "-m", "celery", "-A", "labsite", "worker", "-Q", "mapreduce", "-c", "1"]
        argv += ["-n", f"{name}@%h", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
        workers.append(Process(name, argv, subprocess_env(), log_dir))
    hosts = [f"{name}@{socket.gethostname()}" for name in names]

    def all_answer():
        for w in workers:
            if not w.alive():
                raise AssertionError(f"a MapReduce worker exited:\n{w.output()}")
        return len(app.control.ping(destination=hosts, timeout=0.5)) == len(hosts)

    try:
        wait_until(all_answer, 60, "the MapReduce workers to answer")
    except BaseException:
        for w in workers:
            w.stop()
        raise
    return workers


@pytest.fixture(scope="session")
def mapreduce_workers(django_db_setup, tmp_path_factory):
    """Two MapReduce workers shared by the tests that ask for them, stopped when the session ends;
    they use the test database (django_db_setup names it)."""
    workers = start_mapreduce_workers(tmp_path_factory.mktemp("mapreduce-workers"))
    yield workers
    for w in workers:
        w.stop()


def lab_node_urls():
    return {
        "mariadb_url": settings.LAB_MARIADB_URL,
        "redis_url": settings.LAB_REDIS_URL,
        "zk_hosts": settings.LAB_ZK_HOSTS,
    }
