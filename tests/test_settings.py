"""Production settings: refuse to start unsafe, and pass Django's deployment checklist."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env


def check_deploy(**env):
    base = subprocess_env(DJANGO_SETTINGS_MODULE="labsite.settings.prod")
    base.pop("SECRET_KEY", None)
    base.pop("DEBUG", None)
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_production_settings_pass_check_deploy():
    out = check_deploy(
        SECRET_KEY="k7#Qz9!vR2@mL5$wX8^pT1&nB4*cF6(hJ0)yD3-gS7+eA2=uK9~", ALLOWED_HOSTS="lab.example.org"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    out = check_deploy()
    assert out.returncode != 0
    assert "Set SECRET_KEY" in out.stderr


def test_production_settings_refuse_to_start_with_debug_on():
    out = check_deploy(SECRET_KEY="k7#Qz9!vR2@mL5$wX8^pT1&nB4*cF6(hJ0)yD3-gS7+eA2=uK9~", DEBUG="true")
    assert out.returncode != 0
    assert "DEBUG must be off" in out.stderr


def without_settings(*argv, **env):
    """A fresh interpreter as a deployment starts one: no DJANGO_SETTINGS_MODULE, no SECRET_KEY."""
    base = subprocess_env()
    for name in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"):
        base.pop(name, None)
    base.update(env)
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


ASGI = "import labsite.asgi; from django.conf import settings; print(settings.SETTINGS_MODULE)"
CELERY = "from labsite.celery import app; app.conf.broker_url; from django.conf import settings; print(settings.SETTINGS_MODULE)"


@pytest.mark.parametrize("code", [ASGI, CELERY], ids=["asgi", "celery"])
def test_what_a_deployment_runs_defaults_to_the_production_settings(code):
    out = without_settings("-c", code, SECRET_KEY="k7#Qz9!vR2@mL5$wX8^pT1&nB4*cF6(hJ0)yD3-gS7+eA2=uK9~")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "labsite.settings.prod"


@pytest.mark.parametrize("code", [ASGI, CELERY], ids=["asgi", "celery"])
def test_what_a_deployment_runs_refuses_to_start_without_a_secret_key(code):
    out = without_settings("-c", code)
    assert out.returncode != 0
    assert "Set SECRET_KEY" in out.stderr


def test_manage_py_keeps_the_development_settings_as_its_default():
    out = without_settings("manage.py", "diffsettings")
    assert out.returncode == 0, out.stderr
    assert "DEBUG = True" in out.stdout
