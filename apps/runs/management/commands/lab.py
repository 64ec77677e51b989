"""`manage.py lab list [--json]` and `manage.py lab run LAB SCENARIO [--seed N] [--set K=V ...] [--json]`.

Exit codes: 0 the run finished (whatever the verdict), 1 it errored, 2 bad input (one line).

Dedicated local nodes, for instructors (apps/cluster):
  lab cluster up NAME [--mariadb N] [--redis N] [--zk N] [--json]
  lab cluster fault NAME NODE kill|stop|restart|pause|resume|partition|heal|drop|kill-connections|latency=MS
  lab cluster status [NAME] [--json]
  lab cluster down NAME | --all
  lab cluster reap
and `lab nodes [--json]`, the shared nodes and their health.

Kept data and transfer (apps/runs/kept.py, apps/runs/transfer.py):
  lab run ... --keep     keep the run's databases, keys and znodes for 24 hours, to inspect
  lab drop RUN           drop a kept run's data now
  lab export RUN         the run as JSON lines on stdout (a header, then every event)
  lab import FILE        bring an export back as a read-only run ("-" reads stdin)
Exit codes: 0 done, 2 a refused request (no such run, a bad file, the kept-data limit), one line. Exit codes: 0 done, 1 a node failed
(did not start, did not answer), 2 a refused request (bad name, the cap, no local binaries, no such
cluster or node), each with one line.
"""

import argparse
import json
import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from apps.cluster.faults import NAMED as NAMED_FAULTS
from apps.runs import kept, transfer
from apps.runs.launch import InvalidRun, QuotaExceeded, create_run
from apps.runs.models import Run
from apps.runs.recorder import ConsoleSink
from apps.runs.registry import LABS
from apps.runs.runner import execute
from labsite.schema import control_database_required


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
        run.add_argument("--keep", action="store_true", help="keep the run's data to inspect (24 hours)")
        drop = sub.add_parser("drop", help="drop a kept run's data now")
        drop.add_argument("run", type=_run_id)
        export = sub.add_parser("export", help="print a run as JSON lines")
        export.add_argument("run", type=_run_id)
        imp = sub.add_parser("import", help="bring an exported run back, read-only")
        imp.add_argument("file")
        for p in (ls, run, drop, export, imp):
            one_line_errors(p)
        self.add_cluster_arguments(sub)

    def add_cluster_arguments(self, sub):
        cluster = one_line_errors(sub.add_parser("cluster", help="dedicated local nodes and their faults"))
        verbs = cluster.add_subparsers(dest="cluster_verb", required=True)
        up = verbs.add_parser("up", help="start a named cluster of local nodes")
        up.add_argument("name")
        up.add_argument("--mariadb", type=_count, default=0, metavar="N")
        up.add_argument("--redis", type=_count, default=0, metavar="N")
        up.add_argument("--zk", type=_count, default=0, metavar="N")
        up.add_argument("--json", action="store_true")
        fault = verbs.add_parser("fault", help="inject a fault into one node")
        fault.add_argument("name")
        fault.add_argument("node")
        fault.add_argument("action", metavar="|".join(CLI_FAULTS) + "|latency=MS")
        fault.add_argument("--json", action="store_true")
        status = verbs.add_parser("status", help="the nodes of a cluster (of every cluster without NAME)")
        status.add_argument("name", nargs="?")
        status.add_argument("--json", action="store_true")
        down = verbs.add_parser("down", help="stop a cluster and remove its data")
        down.add_argument("name", nargs="?")
        down.add_argument("--all", action="store_true")
        reap = verbs.add_parser("reap", help="clean up after crashes: orphaned clusters and processes")
        reap.add_argument("--json", action="store_true")
        nodes = one_line_errors(sub.add_parser("nodes", help="the shared lab nodes and their health"))
        nodes.add_argument("--json", action="store_true")
        for p in (up, fault, status, down, reap):
            one_line_errors(p)

    @control_database_required
    def handle(self, *args, **options):
        if options["verb"] == "list":
            return self.list_labs(options["json"])
        if options["verb"] == "cluster":
            return self.cluster(options)
        if options["verb"] == "nodes":
            return self.shared_nodes(options["json"])
        if options["verb"] == "drop":
            return self.drop_data(options["run"])
        if options["verb"] == "export":
            return self.export_run(options["run"])
        if options["verb"] == "import":
            return self.import_run(options["file"])
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
            run = create_run(None, options["lab"], options["scenario"], params, options["seed"], keep=options["keep"])
        except InvalidRun as exc:
            raise CommandError(_one_line(exc.errors), returncode=2) from None
        except QuotaExceeded as exc:
            raise CommandError(str(exc), returncode=2) from None
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
        if run.keep:
            summary["kept"] = kept.describe(run)  # the commands that read the kept data
        self.stdout.write(json.dumps(summary, default=str))
        if run.status != run.Status.DONE:
            sys.exit(1)

    # Kept data and transfer ------------------------------------------------------------------------
    def drop_data(self, run_id):
        """Drops in this process: the command line runs where the lab nodes are reachable."""
        try:
            dropped = kept.drop(run_id)
        except kept.DataNotKept as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"run {run_id}: data dropped" if dropped else f"run {run_id}: the data was already dropped")

    def export_run(self, run_id):
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run {run_id}", returncode=2)
        if not run.is_finished:
            raise CommandError(f"run {run_id} is {run.status}; export it when it ends", returncode=2)
        try:
            for line in transfer.export_lines(run):
                self.stdout.write(line, ending="")
        except BrokenPipeError:  # `lab export RUN | head`: the reader has seen enough
            # Point stdout at /dev/null so the flush at exit does not fail again (Python's recipe).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def import_run(self, path):
        try:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from None
        try:
            run = transfer.import_run(stream, None)
        except transfer.ImportRefused as exc:
            raise CommandError(f"{path}: {exc}", returncode=2) from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        summary = {"run": run.pk, "lab": run.lab, "scenario": run.scenario, "events": run.events_count}
        self.stdout.write(json.dumps(summary))

    # Dedicated nodes -----------------------------------------------------------------------------
    def cluster(self, options):
        from apps.cluster.conf import supervisor
        from apps.cluster.supervisor import ClusterError, NodeFailed

        verb = options["cluster_verb"]
        try:
            sup = supervisor()
            if verb == "up":
                self.cluster_up(sup, options)
            elif verb == "fault":
                self.cluster_fault(sup, options)
            elif verb == "status":
                self.cluster_status(sup, options)
            elif verb == "down":
                self.cluster_down(sup, options)
            else:
                report = sup.reap_orphans()
                if options["json"]:
                    self.stdout.write(json.dumps(report))
                else:
                    self.stdout.write(
                        f"reaped {len(report['clusters'])} cluster(s), {len(report['processes'])} process(es), "
                        f"{len(report['dirs'])} directory(ies)"
                    )
        except NodeFailed as exc:
            raise CommandError(_first_line(exc), returncode=1) from None
        except ClusterError as exc:
            raise CommandError(_first_line(exc), returncode=2) from None

    def cluster_up(self, sup, options):
        began = time.monotonic()
        cluster = sup.up(options["name"], mariadb=options["mariadb"], redis=options["redis"], zookeeper=options["zk"])
        if options["json"]:
            self.stdout.write(json.dumps(cluster.to_dict()))
            return
        self.stdout.write(f"cluster {cluster.name} up in {time.monotonic() - began:.2f} s ({cluster.dir})")
        self.write_nodes(cluster)

    def cluster_fault(self, sup, options):
        action, opts = options["action"], {}
        if action.startswith("latency="):
            ms = action.partition("=")[2]
            if not ms.isdigit():
                raise CommandError(f"latency takes whole milliseconds, as in latency=200, not {action!r}", returncode=2)
            action, opts = "latency", {"ms": int(ms)}
        elif action not in CLI_FAULTS:
            raise CommandError(f"unknown fault {action!r} (faults: {', '.join(CLI_FAULTS)}, latency=MS)", returncode=2)
        result = sup.fault(options["name"], options["node"], action, **opts)
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        detail = ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("cluster", "node", "action", "state"))
        self.stdout.write(f"{action} {result['node']}: {result['state']}" + (f" ({detail})" if detail else ""))

    def cluster_status(self, sup, options):
        clusters = [sup.status(options["name"])] if options["name"] else sup.clusters()
        if options["json"]:
            data = clusters[0].to_dict() if options["name"] else {"clusters": [c.to_dict() for c in clusters]}
            self.stdout.write(json.dumps(data))
            return
        if not clusters:
            self.stdout.write("no clusters")
        for cluster in clusters:
            owner = f", owner pid {cluster.owner_pid}" if cluster.owner_pid else ""
            self.stdout.write(f"cluster {cluster.name} ({cluster.dir}{owner})")
            self.write_nodes(cluster)

    def cluster_down(self, sup, options):
        if options["all"] == bool(options["name"]):
            raise CommandError("give a cluster NAME or --all", returncode=2)
        if options["all"]:
            names = sup.down_all()
            self.stdout.write(f"down: {', '.join(names) or 'no clusters'}")
            return
        result = sup.down(options["name"])
        self.stdout.write(f"cluster {result['cluster']} down ({len(result['stopped'])} processes stopped)")

    def write_nodes(self, cluster):
        for node in cluster.nodes:
            notes = []
            if node.partitioned:
                notes.append("partitioned")
            if node.latency_ms:
                notes.append(f"latency {node.latency_ms} ms")
            if not node.proxy_up:
                notes.append("proxy down")
            pid = f"pid {node.pid}" if node.pid else "no process"
            self.stdout.write(
                f"  {node.name:<8} {node.kind:<10} {node.state:<7} {node.address:<16} {node.url:<36} "
                f"server :{node.port}, {pid}" + (f"; {', '.join(notes)}" if notes else "")
            )

    def shared_nodes(self, as_json):
        from apps.dashboard.health import nodes

        probes = nodes()
        if as_json:
            self.stdout.write(json.dumps({"nodes": probes}))
        else:
            for p in probes:
                timing = f"{p['ms']:.1f} ms" if p["ok"] else "down"
                self.stdout.write(f"{p['name']:<18} {p['role']:<9} {timing:<9} {p['detail']}")
        if not all(p["ok"] for p in probes):
            sys.exit(1)


CLI_FAULTS = NAMED_FAULTS


def _count(value):
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more, not {value!r}")
    return int(value)


def _run_id(value):
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"a run id is a positive whole number, not {value!r}")
    return int(value)


def _first_line(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _one_line(errors):
    parts = []
    for field, messages in errors.items():
        if isinstance(messages, dict):
            parts.extend(f"{field}.{k}: {' '.join(v)}" for k, v in messages.items())
        else:
            parts.append(f"{field}: {' '.join(messages)}")
    return "; ".join(parts)
