"""Health of the shared lab nodes, the control services and the Celery workers, each measured."""

import time

import pymysql
import redis
from django.conf import settings
from django.db import connection
from kazoo.client import KazooClient

from apps.runs.nodes import mysql_params

TIMEOUT = 2.0


def _probe(name, role, fn):
    began = time.perf_counter()
    try:
        detail = fn()
        return {
            "name": name,
            "role": role,
            "ok": True,
            "ms": round((time.perf_counter() - began) * 1000, 2),
            "detail": detail,
        }
    except Exception as exc:  # noqa: BLE001 - a down node is a status, not an error
        return {"name": name, "role": role, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def _control_db():
    with connection.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return cur.fetchone()[0]


def _lab_mariadb():
    conn = pymysql.connect(**mysql_params(settings.LAB_MARIADB_URL), connect_timeout=TIMEOUT)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _redis(url):
    def ping():
        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        try:
            return "redis " + client.info("server")["redis_version"]
        finally:
            client.close()

    return ping


def _zookeeper():
    zk = KazooClient(hosts=settings.LAB_ZK_HOSTS, timeout=TIMEOUT)
    zk.start(timeout=TIMEOUT)
    try:
        # `srvr` is one of the four-letter words the server allows (see bin/services).
        first = zk.command(b"srvr").splitlines()[0]
        return first.replace("Zookeeper version: ", "zookeeper ").split(",")[0]
    finally:
        zk.stop()
        zk.close()


def nodes():
    return [
        _probe("control database", "control", _control_db),
        _probe("control redis", "control", _redis(settings.REDIS_URL)),
        _probe("mariadb", "lab node", _lab_mariadb),
        _probe("redis", "lab node", _redis(settings.LAB_REDIS_URL)),
        _probe("zookeeper", "lab node", _zookeeper),
    ]


def workers():
    from labsite.celery import app

    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "workers": [], "detail": f"{type(exc).__name__}: {exc}"}
    names = sorted(name for reply in replies for name in reply)
    return {
        "ok": bool(names),
        "workers": names,
        "detail": f"{len(names)} worker(s) answered" if names else "no worker answered",
    }
