"""Plotly's JS is a static file like any other: collected by collectstatic, referenced under /static/."""

import hashlib

import plotly
import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from apps.dashboard.finders import BUNDLE
from apps.runs.models import Run

pytestmark = pytest.mark.django_db

STATIC_PATH = f"vendor/plotly-{plotly.__version__}/plotly.min.js"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_collectstatic_collects_plotlys_bundle_under_its_version_and_nothing_else_of_the_package(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    collected = tmp_path / STATIC_PATH
    assert digest(collected) == digest(BUNDLE)
    assert [p.name for p in collected.parent.iterdir()] == ["plotly.min.js"]  # no widget bundle, datasets
    assert finders.find(STATIC_PATH) == str(BUNDLE)  # what the development server serves
    assert finders.find(f"vendor/plotly-{plotly.__version__}/widgetbundle.js") is None


def test_the_run_page_loads_plotly_from_static_and_the_old_view_is_gone(student_user):
    run = Run.objects.create(owner=student_user, lab="diagnostics", scenario="ping", seed=1, status="done")
    client = Client()
    client.force_login(student_user)
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200
    assert f'<script src="/static/{STATIC_PATH}"></script>' in page.content.decode()
    assert client.get(f"/vendor/plotly-{plotly.__version__}.min.js").status_code == 404
