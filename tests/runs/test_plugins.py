"""Labs are plug-ins: the platform's pages render what a lab declares, and name no lab."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from apps.runs.models import Run
from apps.runs.registry import LABS, Assets, Check, Invariant, Lab, Param, Scenario

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


def nothing(ctx):
    return None


@pytest.fixture
def demo_lab(settings):
    """A lab that exists only in this test, with templates of its own, as a new app would bring."""
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], ROOT / "tests/runs/plugin_templates"]}
    ]
    lab = Lab(
        name="demo",
        title="Demo lab",
        explanation="Exists for the plug-in test.",
        scenarios=[
            Scenario(
                "hello",
                "Hello",
                "Says hello.",
                nothing,
                params=(Param("size", "int", 3, "how many", min=1, max=9),),
                invariants=(Invariant("fine", "always", lambda ctx, result: Check(True)),),
            )
        ],
        run_page=Assets(css=("demo/css/demo.css",), js=("demo/js/panel.js",)),
        lab_page=Assets(css=("demo/css/form.css",), js=("demo/js/form.js",)),
        lab_partials=("demo/banner.html",),
        lab_context=lambda: {"demo_greeting": "Hello"},
        field_partials={"size": "demo/after_size.html"},
    )
    LABS["demo"] = lab
    yield lab
    del LABS["demo"]


def test_it_renders_what_a_lab_declares_on_its_lab_page(demo_lab, student_user):
    client = Client()
    client.force_login(student_user)
    body = client.get("/labs/demo/").content.decode()
    assert 'href="/static/demo/css/form.css"' in body
    assert 'src="/static/demo/js/form.js"' in body
    assert '<p data-testid="demo-banner">Hello from Demo lab</p>' in body
    # The field's partial comes right after the field it belongs to.
    assert (
        body.index('data-field="size"') < body.index('data-testid="demo-after-hello"') < body.index('data-field="seed"')
    )
    assert 'src="/static/demo/js/panel.js"' not in body  # the run page's module is not loaded here


def test_it_renders_what_a_lab_declares_on_its_run_page(demo_lab, student_user):
    run = Run.objects.create(owner=student_user, lab="demo", scenario="hello", seed=1, expected="pass")
    client = Client()
    client.force_login(student_user)
    body = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'href="/static/demo/css/demo.css"' in body
    # A lab's module registers its panels before the page's own script starts them.
    assert body.index('src="/static/demo/js/panel.js"') < body.index('src="/static/runs/js/run.js"')


def test_the_other_labs_bring_nothing_to_a_labs_pages(demo_lab, student_user):
    client = Client()
    client.force_login(student_user)
    body = client.get("/labs/demo/").content.decode()
    for other in LABS.values():
        if other is demo_lab:
            continue
        for asset in (*other.lab_page.css, *other.lab_page.js, *other.run_page.css, *other.run_page.js):
            assert asset not in body


def test_a_labs_own_urls_are_part_of_the_site():
    with_urls = [lab for lab in LABS.values() if lab.urls]
    assert with_urls, "some lab declares URLs of its own"
    assert reverse("api-mapreduce-uploads") == "/api/mapreduce/uploads/"


def test_the_platform_names_no_lab():
    """What `grep -rniE "transactions|locks|mapreduce" apps/runs/templates apps/runs/*.py` checks,
    outside comments: no lab's name quoted, as a path segment or as an app's module (a lab named
    with a common word, "sync", may still say "a sync iterator")."""
    names = "|".join(sorted(LABS))
    pattern = re.compile(rf"""apps\.({names})\b|["'/]({names})(["'/.]|$)""", re.IGNORECASE)
    files = [
        *ROOT.glob("apps/runs/templates/**/*.html"),
        *ROOT.glob("apps/runs/*.py"),
        *ROOT.glob("static/runs/js/*.js"),
    ]
    named = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0] if path.suffix == ".py" else line.split("//")[0]
            if pattern.search(code):
                named.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert named == []
