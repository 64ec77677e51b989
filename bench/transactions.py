#!/usr/bin/env python
"""Transactions benchmark: what two-phase commit costs next to a local transaction.

    .venv/bin/python bench/transactions.py [--seconds 5] [--clients 4]

Against the lab MariaDB (LAB_MARIADB_URL, as `make services` or bin/dev set it), in one run and on
one server, so durability settings are the same for all three: bank transfers per second
- `local`: both accounts in one database, one ordinary transaction;
- `2pc-serial`: accounts in two databases, XA branches prepared one after the other, the decision
  logged, then committed one after the other;
- `2pc-parallel`: the same, but both branches prepare (and commit) at once, one thread each.
Each client has its own connections and picks its accounts at random from 1,000 per database.
Writes bench/results/transactions.json and prints the ratios to `local`; the target is parallel 2PC
at 0.4x local or better. Exits 0 whatever the numbers, non-zero only when it could not run.
"""

import argparse
import json
import os
import platform
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.runs.nodes import connect_mariadb, mysql_params  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "transactions.json"
ACCOUNTS = 1000
TARGET = 0.4
# Databases named like a run's, so the lab account may create them and a reaper knows them.
PREFIX = f"run{900_000_000 + os.getpid()}"


def databases():
    return {name: f"{PREFIX}_{name}" for name in ("local", "p1", "p2", "coord")}


def setup(params):
    names = databases()
    conn = connect_mariadb(params)
    with conn.cursor() as cur:
        for key, db in names.items():
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"USE `{db}`")
            if key == "coord":
                cur.execute("CREATE TABLE decisions (gtrid VARCHAR(64) PRIMARY KEY, decision VARCHAR(8) NOT NULL)")
                continue
            cur.execute("CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)")
            cur.execute("CREATE TABLE ledger (gtrid VARCHAR(64) PRIMARY KEY, delta INT NOT NULL)")
            cur.executemany("INSERT INTO accounts VALUES (%s, %s)", [(i, 1_000_000) for i in range(1, ACCOUNTS + 1)])
    conn.close()


def teardown(params):
    conn = connect_mariadb(params)
    with conn.cursor() as cur:
        for db in databases().values():
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    conn.close()


class Client:
    def __init__(self, params, n):
        names = databases()
        self.n, self.count = n, 0
        self.rng = random.Random(n)
        self.local = connect_mariadb(params, names["local"])
        self.p = [connect_mariadb(params, names["p1"]), connect_mariadb(params, names["p2"])]
        self.log = connect_mariadb(params, names["coord"])
        self.pool = ThreadPoolExecutor(1)

    def close(self):
        self.pool.shutdown()
        for conn in (self.local, self.log, *self.p):
            conn.close()

    def gtrid(self):
        self.count += 1
        return f"bench-c{self.n}-t{self.count}"

    def local_transfer(self):
        a, b = self.rng.sample(range(1, ACCOUNTS + 1), 2)
        gtrid = self.gtrid()
        with self.local.cursor() as cur:
            cur.execute("BEGIN")  # one database: one ordinary transaction holds both accounts
            cur.execute("UPDATE accounts SET balance = balance - 1 WHERE id = %s AND balance >= 1", (a,))
            cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (b,))
            cur.execute("INSERT INTO ledger VALUES (%s, 0)", (gtrid,))
            cur.execute("COMMIT")

    def branch_work(self, i, gtrid, account, delta):
        with self.p[i].cursor() as cur:
            cur.execute("XA START %s, %s", (gtrid, f"p{i + 1}"))
            cur.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (delta, account))
            cur.execute("INSERT INTO ledger VALUES (%s, %s)", (gtrid, delta))
            cur.execute("XA END %s, %s", (gtrid, f"p{i + 1}"))

    def xa(self, i, verb, gtrid):
        with self.p[i].cursor() as cur:
            cur.execute(f"XA {verb} %s, %s", (gtrid, f"p{i + 1}"))

    def two_phase(self, parallel):
        gtrid = self.gtrid()
        a, b = self.rng.randint(1, ACCOUNTS), self.rng.randint(1, ACCOUNTS)
        # Branches worked in participant order: two clients never wait on each other across databases.
        self.branch_work(0, gtrid, a, -1)
        self.branch_work(1, gtrid, b, 1)
        self.each(parallel, "PREPARE", gtrid)
        with self.log.cursor() as cur:
            # The decision is forced before phase 2 (presumed abort).
            cur.execute("INSERT INTO decisions VALUES (%s, 'commit')", (gtrid,))
        self.each(parallel, "COMMIT", gtrid)

    def each(self, parallel, verb, gtrid):
        if parallel:
            # The second branch on a helper thread, the first on this one: one hand-off, not two.
            other = self.pool.submit(self.xa, 1, verb, gtrid)
            self.xa(0, verb, gtrid)
            other.result()
        else:
            for i in (0, 1):
                self.xa(i, verb, gtrid)


def measure(params, kind, seconds, clients):
    stop = threading.Event()
    done = [0] * clients
    errors = []

    def loop(n):
        client = Client(params, n + 1000 * len(kind))
        client.n = f"{kind}-{n}"
        try:
            op = {
                "local": client.local_transfer,
                "2pc-serial": lambda: client.two_phase(False),
                "2pc-parallel": lambda: client.two_phase(True),
            }[kind]
            while not stop.is_set():
                op()
                done[n] += 1
        except pymysql.MySQLError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    return {
        "transfers": sum(done),
        "seconds": round(elapsed, 3),
        "per_s": round(sum(done) / elapsed, 1),
        "errors": errors,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    url = os.environ.get("LAB_MARIADB_URL", "mysql://lab:lab@127.0.0.1:3306/")
    params = mysql_params(url)
    try:
        setup(params)
        results = {
            kind: measure(params, kind, args.seconds, args.clients) for kind in ("local", "2pc-serial", "2pc-parallel")
        }
    except pymysql.MySQLError as exc:
        print(f"the benchmark could not run: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            teardown(params)
        except pymysql.MySQLError:
            pass
    conn = connect_mariadb(params)
    with conn.cursor() as cur:
        cur.execute("SELECT @@version, @@innodb_flush_log_at_trx_commit, @@sync_binlog, @@log_bin")
        version, flush, sync_binlog, log_bin = cur.fetchone()
    conn.close()
    local = results["local"]["per_s"] or 1
    ratios = {kind: round(r["per_s"] / local, 3) for kind, r in results.items()}
    out = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "server": {
            "version": version,
            "innodb_flush_log_at_trx_commit": flush,
            "sync_binlog": sync_binlog,
            "log_bin": log_bin,
        },
        "seconds": args.seconds,
        "clients": args.clients,
        "results": results,
        "ratios": ratios,
        "targets": {"2pc-parallel_vs_local": TARGET, "met": ratios["2pc-parallel"] >= TARGET},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print("| kind | transfers/s | ratio to local |\n|---|---|---|")
    for kind, r in results.items():
        print(f"| {kind} | {r['per_s']} | {ratios[kind]} |")
    print(f"target: 2pc-parallel at {TARGET}x local or better: {'met' if out['targets']['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
