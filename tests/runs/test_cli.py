"""`manage.py lab` as a user types it: a real process, the real exit code and output."""

import json
import subprocess
import sys

import pytest

from apps.runs.models import Event, Run
from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def lab(*args):
    return subprocess.run(
        [sys.executable, "manage.py", "lab", *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_lab_list_json_names_every_scenario():
    out = lab("list", "--json")
    assert out.returncode == 0
    labs = {lab["name"]: [s["name"] for s in lab["scenarios"]] for lab in json.loads(out.stdout)["labs"]}
    assert labs["diagnostics"] == ["ping", "ping-cluster", "stream-load"]


def test_lab_run_prints_events_as_json_lines_then_the_summary():
    out = lab("run", "diagnostics", "ping", "--seed", "3", "--set", "rounds=2", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    events, summary = lines[:-1], lines[-1]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["kind"] == "end"
    assert summary["lab"] == "diagnostics" and summary["scenario"] == "ping"
    assert (summary["status"], summary["verdict"], summary["expected"]) == ("done", "pass", "pass")
    assert summary["invariants"][0]["name"] == "all_nodes_answered" and summary["invariants"][0]["held"] is True
    assert summary["events"] == len(events)
    run = Run.objects.get(pk=summary["run"])
    assert (run.owner, run.seed, run.params) == (None, 3, {"rounds": 2})
    assert Event.objects.filter(run=run).count() == len(events)


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "diagnostics", "ping", "--set", "rounds=lots"), "params.rounds: must be an integer"),
        (("run", "diagnostics", "ping", "--set", "rounds"), "--set takes KEY=VALUE"),
        (("run", "astrology", "ping"), "unknown lab 'astrology'"),
        (("run", "diagnostics"), "required: scenario"),
        (("fly",), "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    out = lab(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    assert Run.objects.count() == 0
