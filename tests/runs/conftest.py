"""Helpers for the run tests that need the reaper as deployments run it."""

import os
import sys

from tests.conftest import Process, stop_shared_stack, subprocess_env


def start_beat(tmp_path, name="beat"):
    """A Celery worker with the beat inside it (`worker -B`), as `make run` starts one: every few
    seconds it reaps the runs whose worker stopped beating its heart. Stop it with .stop(). It is
    the only worker: the shared live stack is stopped first."""
    stop_shared_stack()
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "labsite",
        "worker",
        "-B",
        "-s",
        str(tmp_path / "celerybeat-schedule"),
    ]
    argv += [
        "--concurrency=1",
        "--loglevel=INFO",
        "-n",
        f"{name}-{os.getpid()}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    return Process(name, argv, subprocess_env(), tmp_path)
