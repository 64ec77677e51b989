"""Kept data: a run's databases, keys and znodes left for its owner to read with the standard clients,
under a login of the run's own, until Drop data, `lab drop` or the end of its 24 hours."""

import json
import shlex
import subprocess
import sys
from datetime import timedelta

import pymysql
import pytest
import redis
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone
from django.utils.html import escape
from kazoo.client import KazooClient
from rest_framework.authtoken.models import Token

from apps.runs import kept, tasks
from apps.runs.models import Run
from apps.runs.nodes import SharedNodes, leftover_run_ids, mysql_params
from apps.runs.runner import execute
from tests.conftest import ROOT, lab_node_urls, subprocess_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def api(user):
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def start(client, lab="locks", scenario="redis-lease-fencing", **body):
    return client.post("/api/runs/", {"lab": lab, "scenario": scenario, **body}, content_type="application/json")


# The fencing run with a shorter lease and pause: the same schedule (the pause outlasts the lease)
# and the same data left, in a quarter of the time of its defaults.
SHORT = {"ttl_ms": 500, "pause_ms": 2000}
SHORT_ARGS = [arg for key, value in SHORT.items() for arg in ("--set", f"{key}={value}")]


def kept_run(client, lab="locks", scenario="redis-lease-fencing"):
    """Starts a run with keep, runs it here as a worker would, and returns its detail."""
    params = SHORT if scenario == "redis-lease-fencing" else {}
    response = start(client, lab, scenario, params=params, keep=True)
    assert response.status_code == 201, response.content
    run = execute(response.json()["id"], broadcast=False)
    assert run.status == "done", run.failure_reason
    return client.get(f"/api/runs/{run.pk}/").json()


def reader(detail, database=None):
    """A connection with the run's own login, as its mariadb command line makes one."""
    login = {"user": detail["kept"]["user"], "password": detail["kept"]["password"], "database": database}
    return pymysql.connect(**(mysql_params(settings.LAB_MARIADB_URL) | login), connect_timeout=5, autocommit=True)


def shell(command, *extra):
    return subprocess.run([*shlex.split(command), *extra], capture_output=True, text=True, timeout=60)


def keep_on_record(owner, count):
    """Runs already holding kept data, as finished runs with keep leave them."""
    until = timezone.now() + timedelta(hours=1)
    for _ in range(count):
        Run.objects.create(owner=owner, lab="locks", scenario="redis-lease-fencing", seed=1, status="done", keep=True,
                           kept_until=until)  # fmt: skip


def test_a_kept_run_is_readable_with_its_own_login_and_nothing_else(student_user, other_student):
    other = SharedNodes(999_001, **lab_node_urls())  # another run's data on the same servers
    other.mariadb("bank").cursor().execute("CREATE TABLE IF NOT EXISTS t (a INT)")
    other.redis().set(other.key("secret"), "not yours")
    try:
        detail = kept_run(api(student_user))
        info = detail["kept"]
        run_id = detail["id"]
        assert (detail["keep"], info["state"]) == (True, "kept")
        assert info["databases"] == [f"run{run_id}_locks"] and info["keys"] == 1
        assert info["user"] == f"run{run_id}_reader"

        # The exact command lines from the detail reach the data with the standard clients.
        [mariadb] = info["commands"]["mariadb"]
        out = shell(mariadb, "--batch", "-e", "SHOW TABLES")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[0] == f"Tables_in_run{run_id}_locks"
        [redis_cli] = info["commands"]["redis"]
        out = shell(redis_cli)
        assert out.returncode == 0 and out.stdout.split() == [f"run{run_id}:lock:counter:fencing"], out

        conn = reader(detail, f"run{run_id}_locks")
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            table = cur.fetchone()[0]
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            with pytest.raises(pymysql.OperationalError, match="command denied"):
                cur.execute(f"DELETE FROM `{table}`")
            with pytest.raises(pymysql.OperationalError, match="denied"):
                cur.execute("SELECT * FROM run999001_bank.t")
            with pytest.raises(pymysql.OperationalError, match="denied"):
                cur.execute(f"SELECT * FROM `{settings.DATABASES['default']['NAME']}`.runs_run")
        conn.close()
        with pytest.raises(pymysql.OperationalError, match="denied"):
            reader(detail, settings.DATABASES["default"]["NAME"])

        login = redis.Redis.from_url(settings.LAB_REDIS_URL, username=info["user"], password=info["password"])
        assert login.get(f"run{run_id}:lock:counter:fencing") is not None
        with pytest.raises(redis.exceptions.NoPermissionError):
            login.get("run999001:secret")
        with pytest.raises(redis.exceptions.NoPermissionError):
            login.set(f"run{run_id}:lock:counter:fencing", 0)
        login.close()

        # Nobody else sees the run, its commands or its password.
        assert api(other_student).get(f"/api/runs/{run_id}/").status_code == 404
    finally:
        other.cleanup()
        for run in Run.objects.filter(keep=True, dropped_at__isnull=True):
            kept.drop(run.pk)


def test_a_kept_zookeeper_run_leaves_its_znodes(student_user):
    detail = kept_run(api(student_user), scenario="zk-lock")
    run_id = detail["id"]
    try:
        assert detail["kept"]["znodes"] > 0
        assert detail["kept"]["commands"]["zookeeper"] == [
            f"zkCli.sh -server {settings.LAB_ZK_HOSTS} ls -R /distlab/run{run_id}"
        ]
        zk = KazooClient(hosts=settings.LAB_ZK_HOSTS)
        zk.start(timeout=5)
        assert zk.get_children(f"/distlab/run{run_id}")
        zk.stop()
        zk.close()
    finally:
        kept.drop(run_id)
    assert run_id not in leftover_run_ids(**lab_node_urls())


def test_lab_drop_removes_the_data_and_the_login(student_user):
    detail = kept_run(api(student_user))
    run_id = detail["id"]
    out = subprocess.run(
        [sys.executable, "manage.py", "lab", "drop", str(run_id)],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == f"run {run_id}: data dropped", out
    assert run_id not in leftover_run_ids(**lab_node_urls())
    with pytest.raises(pymysql.OperationalError, match="Access denied"):
        reader(detail)
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(
            settings.LAB_REDIS_URL, username=detail["kept"]["user"], password=detail["kept"]["password"]
        ).ping()
    after = api(student_user).get(f"/api/runs/{run_id}/").json()["kept"]
    assert after["state"] == "dropped" and "password" not in after and "commands" not in after


def test_drop_data_on_the_api_is_left_to_a_worker(student_user, other_student, instructor, celery_worker):
    client = api(student_user)
    detail = kept_run(client)
    run_id = detail["id"]
    assert api(other_student).post(f"/api/runs/{run_id}/drop/").status_code == 404
    response = client.post(f"/api/runs/{run_id}/drop/")
    assert response.status_code == 202
    assert response.json()["kept"]["state"] in ("dropping", "dropped")
    wait_until(lambda: client.get(f"/api/runs/{run_id}/").json()["kept"]["state"] == "dropped", 60, "the drop")
    assert run_id not in leftover_run_ids(**lab_node_urls())
    again = api(instructor).post(f"/api/runs/{run_id}/drop/")
    assert again.status_code == 409 and "already dropped" in again.json()["detail"]


def test_the_beat_drops_kept_data_whose_24_hours_are_up(student_user):
    assert settings.CELERY_BEAT_SCHEDULE["drop-expired-data"]["task"] == tasks.drop_expired_data.name
    client = api(student_user)
    expired, fresh = kept_run(client)["id"], kept_run(client)["id"]
    try:
        run = Run.objects.get(pk=expired)
        assert run.kept_until - run.finished_at >= timedelta(hours=23, minutes=59)
        Run.objects.filter(pk=expired).update(kept_until=timezone.now() - timedelta(seconds=1))
        assert tasks.drop_expired_data() == [expired]
        left = leftover_run_ids(**lab_node_urls())
        assert expired not in left and fresh in left
        assert client.get(f"/api/runs/{fresh}/").json()["kept"]["state"] == "kept"
    finally:
        kept.drop(fresh)


def test_a_sixth_kept_run_is_refused_with_429_and_a_reason(student_user):
    keep_on_record(student_user, kept.KEEP_LIMIT)
    client = api(student_user)
    response = start(client, keep=True)
    assert response.status_code == 429
    assert f"the limit is {kept.KEEP_LIMIT}" in response.json()["detail"]
    assert start(client).status_code == 201  # without keep the run is welcome
    Run.objects.filter(keep=True).update(dropped_at=timezone.now())  # dropped data frees the places
    assert start(client, keep=True).status_code == 201


def test_the_command_line_has_the_same_limit_and_says_so_in_one_line():
    keep_on_record(None, kept.KEEP_LIMIT)
    out = subprocess.run(
        [sys.executable, "manage.py", "lab", "run", "locks", "redis-lease-fencing", "--keep"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and f"the limit is {kept.KEEP_LIMIT}" in out.stderr


def test_keep_is_refused_for_dedicated_nodes_with_the_reason(student_user):
    response = start(api(student_user), "diagnostics", "ping-cluster", keep=True)
    assert response.status_code == 400
    assert "dedicated nodes" in response.json()["keep"][0]
    assert not Run.objects.exists()


def kept_panel(run, user):
    request = RequestFactory().get(f"/runs/{run.pk}/")
    request.user = user
    return render_to_string("runs/_kept.html", {"run": run, "page": {"id": run.pk}}, request=request)


def test_the_run_page_panel_shows_the_commands_and_a_drop_button(student_user):
    detail = kept_run(api(student_user))
    run = Run.objects.get(pk=detail["id"])
    panel = kept_panel(run, student_user)
    for client in ("mariadb", "redis", "zookeeper"):
        for line in detail["kept"]["commands"][client]:
            assert escape(line) in panel
    assert f'action="/api/runs/{run.pk}/drop/"' in panel and 'name="csrfmiddlewaretoken"' in panel
    assert "runs/js/kept.js" in panel
    kept.drop(run.pk)
    run.refresh_from_db()
    panel = kept_panel(run, student_user)
    assert "The data was dropped" in panel and detail["kept"]["password"] not in panel
    assert 'data-testid="drop-data"' not in panel


def test_the_lab_run_summary_prints_the_commands_of_kept_data():
    out = subprocess.run(
        [sys.executable, "manage.py", "lab", "run", "locks", "redis-lease-fencing", *SHORT_ARGS, "--keep", "--json"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    try:
        assert summary["kept"]["state"] == "kept"
        assert summary["kept"]["commands"]["mariadb"][0].endswith(f"run{summary['run']}_locks")
    finally:
        kept.drop(summary["run"])
