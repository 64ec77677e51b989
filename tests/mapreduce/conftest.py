"""Two real MapReduce workers (Celery, prefork, one process each) on the mapreduce queue, shared by
the MapReduce tests that ask for them and stopped when the session ends."""

import os
import socket
import sys

import pytest

from tests.conftest import Process, subprocess_env, wait_until


def start_mapreduce_workers(log_dir, count=2):
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
    """The workers' processes; they use the test database (django_db_setup names it)."""
    workers = start_mapreduce_workers(tmp_path_factory.mktemp("mapreduce-workers"))
    yield workers
    for w in workers:
        w.stop()


@pytest.fixture(autouse=True)
def _data_folder(settings, tmp_path):
    """Uploads and kept outputs of a test in a folder of its own."""
    settings.DISTLAB_UPLOAD_DIR = tmp_path / "data"
