"""`manage.py lab list [--json]` and `manage.py lab run LAB SCENARIO [--seed N] [--set K=V ...] [--json]`.

Exit codes: 0 the run finished (whatever the verdict), 1 it errored, 2 bad input (one line).
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.runs.launch import InvalidRun, create_run
from apps.runs.recorder import ConsoleSink
from apps.runs.registry import LABS
from apps.runs.runner import execute


def one_line_errors(parser):
    """Bad arguments get one line on stderr and exit 2, not a usage screen."""

    def error(message):
        if parser.called_from_command_line:
            sys.stderr.write(f"lab: {message}\n")
            sys.exit(2)
        raise CommandError(message, returncode=2)

    parser.error = error
    return parser


class Command(BaseCommand):
    help = "List the labs and their scenarios, or run a scenario here and print its events."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        ls = sub.add_parser("list", help="the labs, scenarios and their parameters")
        ls.add_argument("--json", action="store_true")
        run = sub.add_parser("run", help="run a scenario in this process and record it")
        run.add_argument("lab")
        run.add_argument("scenario")
        run.add_argument("--seed", type=int)
        run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments")
        run.add_argument("--json", action="store_true")
        for p in (ls, run):
            one_line_errors(p)

    def handle(self, *args, **options):
        if options["verb"] == "list":
            return self.list_labs(options["json"])
        return self.run_scenario(options)

    def list_labs(self, as_json):
        if as_json:
            self.stdout.write(json.dumps({"labs": [lab.describe() for lab in LABS.values()]}))
            return
        for lab in LABS.values():
            self.stdout.write(f"{lab.name} — {lab.title}")
            for sc in lab.scenarios.values():
                params = " ".join(f"{p.name}={p.default}" for p in sc.params)
                self.stdout.write(f"  {sc.name:<40} expected {sc.expected:<5} {params}")

    def run_scenario(self, options):
        params = {}
        for item in options["assignments"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--set takes KEY=VALUE, not {item!r}", returncode=2)
            params[key] = value
        try:
            run = create_run(None, options["lab"], options["scenario"], params, options["seed"])
        except InvalidRun as exc:
            raise CommandError(_one_line(exc.errors), returncode=2) from None
        run = execute(run.pk, extra_sinks=[ConsoleSink(self.stdout, as_json=options["json"])])
        summary = {
            "run": run.pk,
            "lab": run.lab,
            "scenario": run.scenario,
            "status": run.status,
            "verdict": run.verdict,
            "expected": run.expected,
            "invariants": [{"name": i["name"], "held": i["held"], "evidence": i["evidence"]} for i in run.invariants],
            "events": run.events_count,
        }
        if run.failure_reason:
            summary["reason"] = run.failure_reason
        self.stdout.write(json.dumps(summary, default=str))
        if run.status != run.Status.DONE:
            sys.exit(1)


def _one_line(errors):
    parts = []
    for field, messages in errors.items():
        if isinstance(messages, dict):
            parts.extend(f"{field}.{k}: {' '.join(v)}" for k, v in messages.items())
        else:
            parts.append(f"{field}: {' '.join(messages)}")
    return "; ".join(parts)
