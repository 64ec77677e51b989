#!/usr/bin/env python
"""Transactions benchmark: what two-phase commit costs next to a local transaction, durably.

    .venv/bin/python bench/transactions.py [--seconds 5] [--warmup 1] [--rounds 3] [--clients 4]

Starts one dedicated MariaDB node through the cluster supervisor (binary log on, sync_binlog=1,
innodb_flush_log_at_trx_commit=1: every COMMIT and XA PREPARE is forced to disk, as in production),
and on that one server measures bank transfers per second of three kinds, in one run:
- `local`: both accounts in one database, one ordinary transaction;
- `2pc-serial`: one account in each of two databases, an XA branch on each, PREPAREd one after the
  other, the commit decision logged (its own durable commit), then XA COMMIT one after the other;
- `2pc-parallel`: the same, but both branches PREPARE at once (one on a helper thread), as the
  engine's `parallel_prepare` does; phase 2 stays sequential, as in the engine.
Client threads with their own connections, a warm-up before each timed window, the kinds taking
turns for several rounds (the median round counts): bench/README.md says more. Writes
bench/results/transactions.json and the table in bench/README.md. Exits 0 whatever the numbers,
non-zero only when the benchmark itself could not run (or a transfer failed).
"""

import argparse
import json
import os
import platform
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "transactions.json"
README = ROOT / "bench" / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- transactions:begin (written by bench/transactions.py) -->", "<!-- transactions:end -->"
KINDS = ("local", "2pc-serial", "2pc-parallel")
TARGET = 0.4  # parallel 2PC at this fraction of local, or better
ACCOUNTS, BALANCE = 1000, 1_000_000
# Durable, as in production; the node's own defaults have no binary log.
SERVER_OPTIONS = ["--log-bin=binlog", "--sync-binlog=1", "--innodb-flush-log-at-trx-commit=1"]
VARIABLES = "version log_bin sync_binlog innodb_flush_log_at_trx_commit binlog_format innodb_flush_method".split()
DECISION_COLUMNS = "gtrid VARCHAR(64) PRIMARY KEY, decision VARCHAR(8) NOT NULL, participants VARCHAR(255) NOT NULL"
# Server counters read before and after each timed window, reported per transfer.
COUNTERS = ("Innodb_data_fsyncs", "Innodb_log_writes", "Binlog_commits", "Binlog_group_commits")


class Client:
    """One client thread's connections, straight to the server's port (not through the node's
    proxy, which would add a Python hop to every round trip), and where its time goes."""

    def __init__(self, node, name):
        def connect(db):
            return pymysql.connect(**node.mysql_params(direct=True), database=db, autocommit=True)

        self.name, self.count, self.rng = name, 0, random.Random(name)
        self.local, self.log, self.p = connect("local"), connect("coord"), [connect("p1"), connect("p2")]
        self.pool = ThreadPoolExecutor(1)
        self.phase = {}  # phase -> seconds spent in it, summed over transfers

    def close(self):
        self.pool.shutdown()
        for conn in (self.local, self.log, *self.p):
            conn.close()

    def timed(self, phase, fn, *args):
        t = time.perf_counter()
        fn(*args)
        self.phase[phase] = self.phase.get(phase, 0.0) + time.perf_counter() - t

    def accounts(self):
        return sorted(self.rng.sample(range(1, ACCOUNTS + 1), 2))  # in id order: no lock cycles

    def local_transfer(self):
        self.count += 1
        (a, b), gtrid = self.accounts(), f"{self.name}-t{self.count}"

        def work():
            with self.local.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("UPDATE accounts SET balance = balance - 1 WHERE id = %s AND balance >= 1", (a,))
                cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (b,))
                cur.execute("INSERT INTO ledger VALUES (%s, 0)", (gtrid,))

        self.timed("work", work)
        self.timed("commit", self.local.cursor().execute, "COMMIT")

    def branch(self, i, gtrid, account, delta):
        """The engine's branch: the balance check and the change in one statement, a ledger row."""
        with self.p[i].cursor() as cur:
            cur.execute("XA START %s, %s", (gtrid, f"p{i + 1}"))
            cur.execute(
                "UPDATE accounts SET balance = balance + %s WHERE id = %s AND balance + %s >= 0",
                (delta, account, delta),
            )
            cur.execute("INSERT INTO ledger VALUES (%s, %s)", (gtrid, delta))
            cur.execute("XA END %s, %s", (gtrid, f"p{i + 1}"))

    def xa(self, i, verb, gtrid):
        with self.p[i].cursor() as cur:
            cur.execute(f"XA {verb} %s, %s", (gtrid, f"p{i + 1}"))

    def prepare_both(self, parallel, gtrid):
        if parallel:  # the second branch on the helper thread, the first on this one
            other = self.pool.submit(self.xa, 1, "PREPARE", gtrid)
            self.xa(0, "PREPARE", gtrid)
            other.result()
        else:
            self.xa(0, "PREPARE", gtrid)
            self.xa(1, "PREPARE", gtrid)

    def log_decision(self, gtrid):
        with self.log.cursor() as cur:  # forced before phase 2 (presumed abort)
            cur.execute("INSERT INTO decisions VALUES (%s, 'commit', 'p1,p2')", (gtrid,))

    def two_phase(self, parallel):
        self.count += 1
        (a, b), gtrid = self.accounts(), f"{self.name}-t{self.count}"
        self.timed("work", lambda: (self.branch(0, gtrid, a, -1), self.branch(1, gtrid, b, 1)))
        self.timed("prepare", self.prepare_both, parallel, gtrid)
        self.timed("log", self.log_decision, gtrid)
        self.timed("commit", lambda: (self.xa(0, "COMMIT", gtrid), self.xa(1, "COMMIT", gtrid)))


def server_status(conn, names):
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS")
        return {k: int(v) for k, v in cur.fetchall() if k in names}


def server_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """Busy CPU seconds of the whole machine (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(node, admin, kind, seconds, warmup, clients):
    """`clients` threads run transfers of one kind without a pause; the counts, phase times,
    server counters and CPU are taken at the end of the warm-up and at the end of the window."""
    stop, errors, live = threading.Event(), [], []

    def loop(n):
        client = None
        try:
            client = Client(node, f"{kind}-{n}-{time.monotonic_ns()}")
            live.append(client)
            op = client.local_transfer if kind == "local" else lambda: client.two_phase(kind == "2pc-parallel")
            while not stop.is_set():
                op()
        except Exception as exc:  # noqa: BLE001 - reported, and the run fails
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            if client is not None:
                client.close()

    def snapshot():
        cpu = {"server": server_cpu(node.pid), "bench_client": sum(os.times()[:2]), "machine": machine_cpu()}
        phases = {p: sum(c.phase.get(p, 0.0) for c in live) for p in ("work", "prepare", "log", "commit")}
        return time.monotonic(), sum(c.count for c in live), phases, server_status(admin, COUNTERS), cpu

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(warmup)
        t0, n0, ph0, st0, cpu0 = snapshot()
        time.sleep(seconds)
        t1, n1, ph1, st1, cpu1 = snapshot()
    finally:
        stop.set()
        for t in threads:
            t.join()
    done, elapsed = n1 - n0, t1 - t0
    per, cpu = max(done, 1), {k: cpu1[k] - cpu0[k] for k in cpu1}
    cpu["other"] = cpu.pop("machine") - cpu["server"] - cpu["bench_client"]  # other jobs, interrupts
    return {
        "transfers": done,
        "seconds": round(elapsed, 3),
        "per_s": round(done / elapsed, 1),
        # Mean wall ms one transfer spends in each phase, and in all (the clients run at once).
        "ms_per_transfer": {p: round((ph1[p] - ph0[p]) * 1000 / per, 3) for p in ph1 if ph1[p] > ph0[p]},
        "latency_ms": round(clients * elapsed * 1000 / per, 3),
        "per_transfer": {k: round((st1[k] - st0[k]) / per, 2) for k in st1},
        "cpu_ms_per_transfer": {k: round(v * 1000 / per, 3) for k, v in cpu.items() if k != "other"},
        "cores_busy": {k: round(v / elapsed, 2) for k, v in cpu.items()},
        "errors": errors,
    }


def setup(admin):
    with admin.cursor() as cur:
        for db in ("local", "p1", "p2", "coord"):
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"USE `{db}`")
            if db == "coord":  # the engine's decision log
                cur.execute(f"CREATE TABLE decisions ({DECISION_COLUMNS})")
                continue
            cur.execute("CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)")
            cur.execute("CREATE TABLE ledger (gtrid VARCHAR(64) PRIMARY KEY, delta INT NOT NULL)")
            cur.executemany("INSERT INTO accounts VALUES (%s, %s)", [(i, BALANCE) for i in range(1, ACCOUNTS + 1)])


def check(admin):
    """Money is conserved in each kind's databases and nothing is left in doubt."""
    with admin.cursor() as cur:
        cur.execute(
            "SELECT (SELECT SUM(balance) FROM local.accounts), "
            "(SELECT SUM(balance) FROM p1.accounts) + (SELECT SUM(balance) FROM p2.accounts)"
        )
        local, xa = cur.fetchone()
        cur.execute("XA RECOVER")
        conserved = int(local) == ACCOUNTS * BALANCE and int(xa) == 2 * ACCOUNTS * BALANCE
        return {"conserved": conserved, "in_doubt": len(cur.fetchall())}


def run(args, log):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from apps.cluster.conf import supervisor

    sup, name = supervisor(), f"bench-tx-{os.getpid()}"
    cluster = sup.up(name, mariadb=1, owner_pid=os.getpid(), options=SERVER_OPTIONS)
    try:
        node = cluster.node("db1")
        admin = pymysql.connect(**node.mysql_params(direct=True), autocommit=True)
        log(f"dedicated MariaDB node {name}/db1 on :{node.port} (pid {node.pid}), {cluster.ready_s} s to start")
        setup(admin)
        with admin.cursor() as cur:
            cur.execute("SHOW GLOBAL VARIABLES")
            server = {k: v for k, v in cur.fetchall() if k in VARIABLES}
        rounds = {kind: [] for kind in KINDS}
        for r in range(args.rounds):
            for kind in KINDS:
                res = measure(node, admin, kind, args.seconds, args.warmup, args.clients)
                rounds[kind].append(res)
                log(f"round {r + 1} {kind}: {res['per_s']}/s, ms {res['ms_per_transfer']}, {res['cores_busy']}")
        checks = check(admin)
        admin.close()
    finally:
        sup.down(name)
    return server, rounds, checks


def report(args, server, rounds, checks):
    results = {}
    for kind, rs in rounds.items():
        median = sorted(rs, key=lambda r: r["per_s"])[len(rs) // 2]
        results[kind] = median | {"per_s_rounds": [r["per_s"] for r in rs]}
    local = results["local"]["per_s"] or 1
    ratios = {kind: round(r["per_s"] / local, 3) for kind, r in results.items()}
    met = ratios["2pc-parallel"] >= TARGET
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": {
            "where": "one dedicated MariaDB node (supervisor), databases local, p1, p2 and coord on it; "
            "clients connect to its port directly, not through the node's proxy",
            "options": SERVER_OPTIONS,
            "variables": server,
        },
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "results": results,
        "ratios": ratios,
        "target": {"2pc-parallel_vs_local": TARGET, "value": ratios["2pc-parallel"], "met": met},
        "checks": checks,
    }


def table(out):
    v = out["server"]["variables"]
    lines = [
        f"MariaDB {v.get('version')}, log_bin {v.get('log_bin')}, sync_binlog {v.get('sync_binlog')}, "
        f"innodb_flush_log_at_trx_commit {v.get('innodb_flush_log_at_trx_commit')}; {out['clients']} clients, "
        f"median of {out['rounds']} rounds of {out['seconds']:g} s; {out['machine']['cores']} cores; {out['when']}",
        "",
        "| kind | transfers/s (rounds) | ratio to local | ms per transfer: work / prepare / log / commit "
        "| InnoDB fsyncs / binlog group commits per transfer | server CPU ms per transfer | cores busy elsewhere |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for kind, r in out["results"].items():
        ms, pt = r["ms_per_transfer"], r["per_transfer"]
        phases = " / ".join(f"{ms[p]:.2f}" if p in ms else "–" for p in ("work", "prepare", "log", "commit"))
        rates = ", ".join(f"{x:,.0f}" for x in r["per_s_rounds"])
        lines.append(
            f"| {kind} | {r['per_s']:,.0f} ({rates}) | {out['ratios'][kind]:.2f} | {phases} "
            f"| {pt['Innodb_data_fsyncs']:.2f} / {pt['Binlog_group_commits']:.2f} "
            f"| {r['cpu_ms_per_transfer']['server']:.2f} | {r['cores_busy']['other']:.2f} |"
        )
    t, c = out["target"], out["checks"]
    lines.append(
        f"\nTarget: 2pc-parallel ≥ {t['2pc-parallel_vs_local']} × local: {t['value']:.2f}× — "
        f"{'met' if t['met'] else '**not met**'}. Money conserved: {'yes' if c['conserved'] else '**no**'}; "
        f"branches in doubt at the end: {c['in_doubt']}."
    )
    return "\n".join(lines)


def update_readme(text):
    head, rest = README.read_text().split(TABLE_BEGIN, 1)
    README.write_text(f"{head}{TABLE_BEGIN}\n{text}\n{TABLE_END}{rest.split(TABLE_END, 1)[1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window per kind and round (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before each window (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the kinds take turns (default 3)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    args = parser.parse_args()

    def log(msg):
        print(f"[transactions {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # so the node goes down
    try:
        server, rounds, checks = run(args, log)
    except Exception as exc:  # noqa: BLE001 - the benchmark could not run (no server, no binaries ...)
        log(f"error: {type(exc).__name__}: {exc}")
        return 1
    out = report(args, server, rounds, checks)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    text = table(out)
    print(text)
    update_readme(text)
    errors = [e for rs in rounds.values() for r in rs for e in r["errors"]]
    if errors or not checks["conserved"] or checks["in_doubt"]:
        log(f"failed transfers or broken invariants: {errors[:3]} {checks}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
