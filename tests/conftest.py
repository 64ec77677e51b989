"""Fixtures shared by the whole suite. Every test runs against the real MariaDB, Redis and
ZooKeeper that `make test` starts; processes a test starts (Celery workers, daphne) are stopped
by the fixture that started them, whatever the test's outcome."""

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
    """Each test starts with no queued tasks and no pending run commands from an earlier one."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
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


def start_worker(tmp_path, name="worker", **env):
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


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    worker = start_worker(tmp_path)
    yield worker
    worker.stop()


class LiveStack:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = None
        self.worker = start_worker(tmp_path)
        self.start_web()

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

    def stop(self):
        for process in (self.web, self.worker):
            if process:
                process.stop()


@pytest.fixture
def live_stack(transactional_db, tmp_path):
    stack = LiveStack(tmp_path)
    yield stack
    stack.stop()


def lab_node_urls():
    return {
        "mariadb_url": settings.LAB_MARIADB_URL,
        "redis_url": settings.LAB_REDIS_URL,
        "zk_hosts": settings.LAB_ZK_HOSTS,
    }
