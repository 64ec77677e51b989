#!/usr/bin/env python
"""Data sync benchmark: the lab's copy, CDC and checksums against the standard tools, on two servers.

    .venv/bin/python bench/sync.py [--rows 500000] [--rounds 3] [--chunk 10000] [--workers 4]
        [--cdc-rate 1000] [--cdc-seconds 30] [--cdc-clients 4] [--cdc-rows 10000] [--no-publish]

Starts two dedicated MariaDB servers through the cluster supervisor, set as the lab's CDC scenarios
set them (a ROW binlog with full images and metadata, sync_binlog=1, innodb_flush_log_at_trx_commit=1),
with a buffer pool that holds the table. db1 holds A, db2 holds B; every client connects to the
servers' own ports (not through the nodes' fault proxies). A is loaded with `--rows` rows by one
LOAD DATA LOCAL INFILE from a pipe. Then:

1. Full copy of A into an empty B, the kinds taking turns for `--rounds` rounds:
   `mariadb-dump --single-transaction --no-create-info | mariadb` (the baseline, into a table of
   B's definition on the same target server); the lab's chunked copy (apps/sync/engine/copy.py,
   one pass) with its load-data writer, each chunk streamed by LOAD DATA LOCAL INFILE … REPLACE,
   `--workers` chunks at a time; and, for reference, the same copy with its upsert writer, one
   chunk at a time (the full-copy scenario's default). After each copy B must equal A (COUNT and
   BIT_XOR of the rows' CRC32 on both sides).
2. Verification of the equal tables, in turns: `CHECKSUM TABLE` on both servers at once (the
   baseline) against the lab's chunk checksums (apps/sync/engine/checksum.py), which must find no
   chunk differing.
3. CDC: a workload in a process of its own writes to A at `--cdc-rate` writes/s from
   `--cdc-clients` connections (inserts, updates, deletes, one transaction each, mixed as the
   lab's workload mixes them) for `--cdc-seconds`, while the lab's CDC syncer
   (apps/sync/engine/cdc.py) keeps B. Triggers on B stamp the time each change reaches B
   (SYSDATE(6), into a table of their own on the target server); a write's lag is that time minus
   the moment it was sent to A. Reported: lag percentiles, and the apply rate against the
   source's write rate. A minimal python-mysql-replication loop is measured the same way for
   reference, committing B after each event, and grouping commits.

The targets are judged on the median of the rounds' ratios. Writes bench/results/sync.json and the
table in bench/README.md. Exits 0 whatever the numbers, non-zero only when the benchmark itself
could not run or a copy left B different from A.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import common
import pymysql

# A table of 500,000 rows is ~100 MB with its indexes: a buffer pool that holds it (the nodes'
# default is 32 MB) and a redo log that does not force a checkpoint every few chunks, so that the
# copies measure the copying rather than the disk.
SIZING = ["--innodb-buffer-pool-size=512M", "--innodb-log-file-size=256M", "--local-infile=1"]
CDC_KINDS = ("lab-cdc", "minimal-cdc", "minimal-cdc-grouped")
MAX_CHUNK = 100_000  # rows per chunk, as the lab's chunk parameter allows (apps/sync/common.py)
CATCH_UP_S = 10.0  # how long B has after the workload's last write; what it lacks then is "never"
GROUP_MS = 20  # the grouped reference commits B at most this long after a change
TARGET_COPY = 1.0  # the lab's copy at least this fraction of mariadb-dump | mariadb's rate
TARGET_VERIFY = 0.5  # the lab's checksums at least this fraction of CHECKSUM TABLE's rate
TARGET_LAG_P99_MS = 500.0
DUMP_DB = "dump"  # the baseline's target database on db2: its table `a` has B's definition
PROBE_DB = "probe"  # on db2: when each change reached B
MIX = {"insert": 5, "update": 4, "delete": 1}  # the lab's workload mix (apps/sync/engine/workload.py)


# The servers and the lab's view of them -------------------------------------------------------


class Quiet:
    """Recording off: each event gets its number and goes nowhere."""

    seq = 0

    def emit(self, kind: str, **fields: Any) -> dict:
        self.seq += 1
        return {"seq": self.seq}

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        pass


class Bench:
    """The two servers, and a lab run context on them whose events go nowhere."""

    def __init__(self, sup: Any, cluster: Any, rows: int, seed: int = 1):
        from apps.cluster.runnodes import DedicatedNodes
        from apps.runs.context import RunContext
        from apps.sync.engine.tables import Pair

        class DirectNodes(DedicatedNodes):
            """The lab's nodes, reached at the servers' own ports like the baselines' clients."""

            def mariadb_params(self, node=None):
                return self.cluster.node(node or self.roles["mariadb"]).mysql_params(direct=True)

        self.sup, self.cluster = sup, cluster
        self.db1, self.db2 = cluster.node("db1"), cluster.node("db2")
        self.rows, self.seed = rows, seed
        self.nodes = DirectNodes(random.randrange(10**8, 10**9), sup, cluster, emit=Quiet().emit)
        self.RunContext, self.pair = RunContext, Pair(self.nodes)

    def context(self, **params: Any) -> Any:
        """A fresh run context (its own history and clock), as one run of a scenario gets."""
        base = {"rows": self.rows, "rate": 0, "steps": 1}
        return self.RunContext(
            run_id=self.nodes.run_id,
            params=base | params,
            seed=self.seed,
            recorder=Quiet(),
            nodes=self.nodes,
            time_limit=3600,
            event_limit=10**12,
        )

    def connect(self, node: Any, db: str | None = None, **options: Any) -> Any:
        return pymysql.connect(**node.mysql_params(direct=True), database=db, **({"autocommit": True} | options))

    def close(self) -> None:
        self.nodes.close()


def tables_checksum(conn: Any, table: str) -> tuple[int, int]:
    """(rows, BIT_XOR of the rows' CRC32) of a table in the connection's database: the lab's
    whole-table fingerprint (apps/sync/engine/tables.py), for any of the bench's tables."""
    from apps.sync.engine.tables import TABLE_CHECKSUM

    with conn.cursor() as cur:
        cur.execute(TABLE_CHECKSUM.format(table=table))
        count, crc = cur.fetchone()
        return int(count), int(crc)


def cpu_of(pid: int) -> float:
    """CPU seconds a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(bench: Bench) -> dict:
    """CPU seconds so far: the machine's (all but idle and iowait), each server's, this process's
    (the lab's code and the references run in its threads) and its finished children's
    (mariadb-dump and mariadb in the copy, the workload in CDC)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    times = os.times()
    return {
        "time": time.monotonic(),
        "machine": (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
        "db1": cpu_of(bench.db1.pid),
        "db2": cpu_of(bench.db2.pid),
        "bench": times[0] + times[1],
        "children": times[2] + times[3],
    }


def cores_busy(before: dict, after: dict) -> dict:
    """How many cores each was using on average between two snapshots; `other` is everyone else
    on the machine (other jobs, interrupts)."""
    seconds = after["time"] - before["time"]
    busy = {k: (after[k] - before[k]) / seconds for k in before if k != "time"}
    busy["other"] = busy["machine"] - sum(v for k, v in busy.items() if k != "machine")
    return {k: round(v, 2) for k, v in busy.items()}


def pipe_path(write: Callable[[Any], None]) -> tuple[str, threading.Thread]:
    """A path the client can open to read what `write(file)` writes, from a thread: LOAD DATA
    LOCAL INFILE streams it to the server as it comes, with nothing on disk."""
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb", buffering=1 << 20) as f:
            write(f)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return f"/dev/fd/{r}", thread


def load_data(conn: Any, table: str, columns: str, write: Callable[[Any], None], replace: bool = False) -> int:
    """LOAD DATA LOCAL INFILE of tab-separated lines that `write(file)` produces; the rows loaded.
    The values hold no tab, newline or backslash (the lab's keys and values are letters and
    digits), so the lines need no escaping."""
    path, thread = pipe_path(write)
    read_end = int(path.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            n = cur.execute(
                f"LOAD DATA LOCAL INFILE %s {'REPLACE ' if replace else ''}INTO TABLE {table} "
                f"FIELDS TERMINATED BY '\\t' ({columns})",
                (path,),
            )
    finally:
        thread.join()
        os.close(read_end)
    return n


def load_a(bench: Bench, log: Callable[[str], None]) -> dict:
    """A made afresh (the lab's DDL) and B empty, then `rows` rows loaded into A in one statement:
    ids 1..rows, the lab's business keys, seeded values, version 1, distinct timestamps."""
    from apps.sync.engine.tables import create_tables
    from apps.sync.engine.workload import bkey_of

    create_tables(bench.pair)
    rng = random.Random(bench.seed)
    letters = bytes(ord("a") + i % 26 for i in range(256))  # a random byte -> a letter
    rows = bench.rows

    def write(f: Any) -> None:
        block = 10_000
        base = 1_700_000_000  # 2023-11-14: a fixed start, a microsecond apart per row
        for start in range(0, rows, block):
            n = min(block, rows - start)
            values = rng.randbytes(12 * n).translate(letters).decode()
            lines = []
            for i in range(n):
                id = start + i + 1
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + id // 1_000_000))
                lines.append(f"{id}\t{bkey_of(id)}\t{values[12 * i : 12 * i + 12]}\t1\t{stamp}.{id % 1_000_000:06d}\n")
            f.write("".join(lines).encode())

    conn = bench.connect(bench.db1, "src", local_infile=True)
    began = time.perf_counter()
    try:
        loaded = load_data(conn, "a", "id, bkey, value, version, updated_at", write)
        a = tables_checksum(conn, "a")
    finally:
        conn.close()
    seconds = time.perf_counter() - began
    log(f"A loaded: {loaded:,} rows in {seconds:.1f} s ({loaded / seconds:,.0f} rows/s)")
    if a[0] != rows:
        raise RuntimeError(f"A has {a[0]} rows after loading {rows}")
    return {"rows": loaded, "seconds": round(seconds, 3), "checksum": list(a)}


# Part 1: the full copy ---------------------------------------------------------------------------


def reset_target(bench: Bench) -> None:
    """B empty (the lab's keyed definition) and the baseline's table of the same definition empty."""
    from apps.sync.engine.tables import B_KEYED_DDL

    conn = bench.connect(bench.db2)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS dst")
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {DUMP_DB}")
            for db, name in (("dst", "b"), (DUMP_DB, "a")):
                cur.execute(f"DROP TABLE IF EXISTS {db}.{name}")
                cur.execute(B_KEYED_DDL.replace("TABLE IF NOT EXISTS b", f"TABLE {db}.{name}", 1))
    finally:
        conn.close()


def client_args(node: Any) -> list[str]:
    p = node.mysql_params(direct=True)
    return [f"--host={p['host']}", f"--port={p['port']}", f"--user={p['user']}", f"--password={p['password']}"]


def copy_dump(bench: Bench) -> tuple[str, str, dict]:
    """The baseline: mariadb-dump of A in one consistent snapshot, piped into mariadb on the target
    (into DUMP_DB.a, which has B's definition: the dump names the source's table)."""
    dump = subprocess.Popen(
        ["mariadb-dump", *client_args(bench.db1), "--single-transaction", "--no-create-info", "--skip-ssl", "src", "a"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    load = subprocess.run(
        ["mariadb", *client_args(bench.db2), "--skip-ssl", DUMP_DB],
        stdin=dump.stdout,
        capture_output=True,
    )
    dump.stdout.close()
    dump_err = dump.stderr.read()
    if dump.wait() != 0 or load.returncode != 0:
        raise RuntimeError(f"mariadb-dump | mariadb failed: {dump_err.decode()} {load.stderr.decode()}".strip())
    return DUMP_DB, "a", {}


def copy_lab(bench: Bench, chunk: int, workers: int, load_data: bool = True) -> tuple[str, str, dict]:
    """The lab's chunked copy (apps/sync/engine/copy.py: keyset pagination, each chunk written in
    one transaction with tenacity's retries) of A into B: one pass, no `row` event per row. With
    `load_data`, each chunk is read as lines and streamed by LOAD DATA LOCAL INFILE … REPLACE,
    `workers` chunks at a time; without, upserted by one `executemany`, one chunk at a time.
    Reports the chunk attempts it retried (a timeout on a busy machine, say)."""
    from apps.sync.engine.copy import ChunkCopy

    ctx = bench.context()
    parallel = workers if load_data else 1
    copier = ChunkCopy(ctx, bench.pair, chunk=chunk, load_data=load_data, parallel=parallel, row_events=False)
    try:
        if not copier.copy_pass():
            raise RuntimeError(f"the copy gave up: {copier.result()['retries'][-3:]}")
    finally:
        copier.close()
    return "dst", "b", {"retries": len(copier.retried)}


def measure_copies(bench: Bench, args: Any, a_sum: tuple[int, int], log: Callable[[str], None]) -> dict:
    kinds = {
        "mariadb-dump": lambda: copy_dump(bench),
        "lab-copy": lambda: copy_lab(bench, args.chunk, args.workers),
        "lab-copy-upsert": lambda: copy_lab(bench, args.chunk, args.workers, load_data=False),
    }
    rounds: dict[str, list] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind, run in kinds.items():
            reset_target(bench)
            began, cpu0 = time.perf_counter(), cpu_snapshot(bench)
            try:
                db, name, extra = run()
            except Exception as exc:  # noqa: BLE001 - a kind that cannot run is reported, not fatal
                rounds[kind].append({"error": f"{type(exc).__name__}: {exc}"})
                log(f"copy, round {r + 1}, {kind}: {type(exc).__name__}: {exc}")
                continue
            seconds, cpu1 = time.perf_counter() - began, cpu_snapshot(bench)
            conn = bench.connect(bench.db2, db)
            try:
                b_sum = tables_checksum(conn, name)
            finally:
                conn.close()
            res = {
                "seconds": round(seconds, 3),
                "rows_per_s": round(a_sum[0] / seconds),
                "equal": b_sum == a_sum,
                "cores_busy": cores_busy(cpu0, cpu1),
            } | extra
            rounds[kind].append(res)
            log(
                f"copy, round {r + 1}, {kind}: {seconds:.2f} s, {res['rows_per_s']:,} rows/s, equal {res['equal']} {extra}"
            )
    return rounds


# Part 2: verification ------------------------------------------------------------------------------


def verify_checksum_table(bench: Bench) -> dict:
    """The baseline: CHECKSUM TABLE on both servers at once, each over a new connection."""

    def one(node: Any, db: str, table: str) -> int:
        conn = bench.connect(node, db)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CHECKSUM TABLE {table}")
                return int(cur.fetchone()[1])
        finally:
            conn.close()

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(one, bench.db1, "src", "a"), pool.submit(one, bench.db2, "dst", "b")
        return {"a": a.result(), "b": b.result(), "equal": a.result() == b.result()}


def verify_lab(bench: Bench, chunk: int) -> dict:
    """The lab's chunk checksums (apps/sync/engine/checksum.py: per chunk of ids, COUNT(*) and
    BIT_XOR(CRC32(CONCAT_WS(...))) on both servers at once), over new connections."""
    from apps.sync.engine.checksum import differing_chunks

    conns = (bench.pair.source(), bench.pair.target())
    try:
        differing = differing_chunks(*conns, chunk)
    finally:
        for conn in conns:
            conn.close()
    return {"differing": len(differing), "equal": not differing}


def measure_verification(bench: Bench, args: Any, log: Callable[[str], None]) -> dict:
    kinds = {
        "checksum-table": lambda: verify_checksum_table(bench),
        "lab-checksum": lambda: verify_lab(bench, args.chunk),
    }
    rounds: dict[str, list] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind, run in kinds.items():
            began, cpu0 = time.perf_counter(), cpu_snapshot(bench)
            try:
                found = run()
            except Exception as exc:  # noqa: BLE001 - a kind that cannot run is reported, not fatal
                rounds[kind].append({"error": f"{type(exc).__name__}: {exc}"})
                log(f"verification, round {r + 1}, {kind}: {type(exc).__name__}: {exc}")
                continue
            seconds, cpu1 = time.perf_counter() - began, cpu_snapshot(bench)
            res = {
                "seconds": round(seconds, 3),
                "rows_per_s": round(bench.rows / seconds),
                "cores_busy": cores_busy(cpu0, cpu1),
            } | found
            rounds[kind].append(res)
            log(f"verification, round {r + 1}, {kind}: {seconds:.2f} s, {res['rows_per_s']:,} rows/s, {found}")
    return rounds


# Part 3: CDC -------------------------------------------------------------------------------------------


PROBE_DDL = (
    f"CREATE TABLE {PROBE_DB}.applied (seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, "
    "version INT NULL, op CHAR(1) NOT NULL, at DECIMAL(17, 6) NOT NULL) ENGINE=InnoDB"
)
# SYSDATE(6) is the time the trigger runs (NOW() would be the statement's start); the applier's
# commit follows within its transaction.
TRIGGERS = {
    "i": "AFTER INSERT ON dst.b FOR EACH ROW INSERT INTO {db}.applied (id, version, op, at) "
    "VALUES (NEW.id, NEW.version, 'i', UNIX_TIMESTAMP(SYSDATE(6)))",
    "u": "AFTER UPDATE ON dst.b FOR EACH ROW INSERT INTO {db}.applied (id, version, op, at) "
    "VALUES (NEW.id, NEW.version, 'u', UNIX_TIMESTAMP(SYSDATE(6)))",
    "d": "AFTER DELETE ON dst.b FOR EACH ROW INSERT INTO {db}.applied (id, version, op, at) "
    "VALUES (OLD.id, NULL, 'd', UNIX_TIMESTAMP(SYSDATE(6)))",
}


def arm_probe(bench: Bench) -> int:
    """Triggers on B that stamp each change with the time it reached B; returns the stamp table's
    high-water mark, so that only what comes after counts."""
    conn = bench.connect(bench.db2)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {PROBE_DB}")
            cur.execute(f"DROP TABLE IF EXISTS {PROBE_DB}.applied")
            cur.execute(PROBE_DDL)
            for op, body in TRIGGERS.items():
                cur.execute(f"DROP TRIGGER IF EXISTS dst.b_probe_{op}")
                cur.execute(f"CREATE TRIGGER dst.b_probe_{op} " + body.format(db=PROBE_DB))
            cur.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {PROBE_DB}.applied")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def disarm_probe(bench: Bench) -> list[tuple]:
    """The stamps (id, version, op, at) in the order they were made, and the triggers dropped."""
    conn = bench.connect(bench.db2)
    try:
        with conn.cursor() as cur:
            for op in TRIGGERS:
                cur.execute(f"DROP TRIGGER IF EXISTS dst.b_probe_{op}")
            cur.execute(f"SELECT id, version, op, at FROM {PROBE_DB}.applied ORDER BY seq")
            return [(int(i), v, op, float(at)) for i, v, op, at in cur.fetchall()]
    finally:
        conn.close()


def write_paced(params: dict, ids: list[int], rate: int, seconds: float, seed: int, clients: int, out: Any) -> None:
    """The workload, in a process of its own: `rate` writes/s for `seconds` to A, one transaction
    each, inserts, updates and deletes mixed as the lab's workload mixes them, from `clients`
    connections at once (one connection waits for each commit's flush, and cannot make 1,000 a
    second on a busy disk). Each client owns its share of the rows, so no two write one row at
    once and each row's versions commit in order. Sends back every acknowledged write as (time
    sent, op, id, version), in the order sent: B may see a change before A's client hears that it
    committed, so a lag is counted from the moment the write was sent."""
    began = time.monotonic()
    done: list[list[tuple]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def client(k: int) -> None:
        try:
            write_share(params, ids[k::clients], rate / clients, began, seconds, f"{seed}-{k}", done[k])
        except Exception as exc:  # noqa: BLE001 - sent back and reported
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send({"writes": sorted(w for share in done for w in share), "errors": errors})
    out.close()


def write_share(params: dict, ids: list[int], rate: float, began: float, seconds: float, tag: str, done: list) -> None:
    """One client of the workload: `rate` writes/s to its own rows (and the rows it inserts)."""
    rng = random.Random(tag)
    conn = pymysql.connect(**params, database="src", autocommit=True)
    live, versions = list(ids), dict.fromkeys(ids, 1)  # a list for O(1) random picks
    ops, weights = list(MIX), list(MIX.values())
    letters = "abcdefghijklmnopqrstuvwxyz"
    n = 0
    with conn.cursor() as cur:
        while (now := time.monotonic() - began) < seconds:
            if n >= now * rate:  # ahead of the pace: wait for the next write's turn
                time.sleep((n + 1) / rate - now)
                continue
            op = rng.choices(ops, weights)[0] if live else "insert"
            value = "".join(rng.choices(letters, k=12))
            sent = time.time()
            if op == "insert":
                cur.execute(
                    "INSERT INTO a (bkey, value, version, updated_at) VALUES (%s, %s, 1, NOW(6))",
                    (f"w{tag}-{n}", value),
                )
                id, version = cur.lastrowid, 1
                live.append(id)
            else:
                i = rng.randrange(len(live))
                id = live[i]
                if op == "update":
                    version = versions[id] + 1
                    cur.execute(
                        "UPDATE a SET value = %s, version = %s, updated_at = NOW(6) WHERE id = %s", (value, version, id)
                    )
                else:
                    version = None
                    cur.execute("DELETE FROM a WHERE id = %s", (id,))
                    live[i] = live[-1]
                    live.pop()
            done.append((sent, op, id, version))
            versions[id] = version
            n += 1
    conn.close()


def run_workload(bench: Bench, rate: int, seconds: float, clients: int) -> tuple[Any, Any]:
    """Starts the paced workload in a process of its own; returns (process, receiving pipe end)."""
    conn = bench.connect(bench.db1, "src")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM a")
            ids = [int(i) for (i,) in cur.fetchall()]
    finally:
        conn.close()
    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    proc = spawn.Process(
        target=write_paced,
        args=(bench.db1.mysql_params(direct=True), ids, rate, seconds, bench.seed, clients, send),
        daemon=True,
    )
    proc.start()
    send.close()
    return proc, receive


def lags(writes: list[tuple], stamps: list[tuple]) -> dict:
    """Each acknowledged write matched to the first stamp of the same change in B: its lag (ms),
    and the apply rate over the span of the stamps against the write rate over the writes'."""
    first: dict[tuple, float] = {}
    for id, version, op, at in stamps:
        key = (id, None if op == "d" else version)
        first.setdefault(key, at)
    lag_ms, applied_at = [], []
    for t, op, id, version in writes:
        at = first.get((id, None if op == "delete" else version))
        # A write B never got counts as an infinite lag: a percentile that falls on one is None.
        lag_ms.append(math.inf if at is None else (at - t) * 1000.0)
        if at is not None:
            applied_at.append(at)
    lag_ms.sort()
    missing = len(writes) - len(applied_at)

    def pct(p: float) -> float | None:
        x = lag_ms[min(len(lag_ms) - 1, int(p * len(lag_ms)))] if lag_ms else math.inf
        return None if x == math.inf else round(x, 1)

    span_w = writes[-1][0] - writes[0][0] if len(writes) > 1 else 0.0
    applied_at.sort()
    span_a = applied_at[-1] - applied_at[0] if len(applied_at) > 1 else 0.0
    write_rate = len(writes) / span_w if span_w else None
    apply_rate = len(applied_at) / span_a if span_a else None
    return {
        "writes": len(writes),
        "applied": len(applied_at),
        "missing": missing,
        "write_rate": round(write_rate, 1) if write_rate else None,
        "apply_rate": round(apply_rate, 1) if apply_rate else None,
        "apply_vs_write": common.ratio(apply_rate, write_rate),
        "lag_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)},
        "replays": len(stamps) - len(first),
    }


class MinimalCdc:
    """The reference: one python-mysql-replication reader from a consistent snapshot's binlog
    position, each row event applied to B by upsert or delete, no offset kept. It commits B after
    every event, or with `group_ms`, once the oldest change not yet committed is that old (and
    when the stream goes idle): one commit, one flush of B's logs, for many source transactions."""

    def __init__(self, bench: Bench, group_ms: float | None = None):
        self.bench, self.group_s = bench, group_ms / 1000.0 if group_ms else None
        self.stop = threading.Event()
        self.error: str | None = None
        self.commits = 0

    def start(self) -> None:
        """B made equal to A from one consistent snapshot, whose binlog position the stream starts at."""
        source = self.bench.connect(self.bench.db1, "src")
        target = self.bench.connect(self.bench.db2, "dst", local_infile=True)
        try:
            with source.cursor() as cur:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
                status = {k.lower(): v for k, v in cur.fetchall()}
                # MariaDB streams from a GTID position (python-mysql-replication ignores a file and
                # offset when is_mariadb is set): the snapshot's, from its binlog coordinates.
                cur.execute(
                    "SELECT BINLOG_GTID_POS(%s, %s)",
                    (status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])),
                )
                (self.gtid,) = cur.fetchone()
                cur.execute("SELECT CONCAT_WS('\\t', id, bkey, value, version, updated_at) FROM a ORDER BY id")
                lines = [r[0] for r in cur.fetchall()]
                cur.execute("COMMIT")
            load_data(
                target,
                "b",
                "id, bkey, value, version, updated_at",
                lambda f: f.write("".join(line + "\n" for line in lines).encode()),
            )
        finally:
            source.close()
            target.close()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        from pymysqlreplication import BinLogStreamReader
        from pymysqlreplication.event import HeartbeatLogEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        params = self.bench.db1.mysql_params(direct=True)
        stream = BinLogStreamReader(
            connection_settings={k: params[k] for k in ("host", "port", "user", "password")},
            server_id=4242,
            is_mariadb=True,
            blocking=True,
            auto_position=self.gtid,
            only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, HeartbeatLogEvent],
            only_schemas=["src"],
            only_tables=["a"],
            # An idle stream still wakes the loop, to see `stop` and to commit what is waiting.
            slave_heartbeat=self.group_s or 0.2,
        )
        upsert = (
            "INSERT INTO b (id, bkey, value, version, updated_at) VALUES (%s, %s, %s, %s, %s) "
            "ON DUPLICATE KEY UPDATE bkey = VALUES(bkey), value = VALUES(value), version = VALUES(version), "
            "updated_at = VALUES(updated_at)"
        )
        target, oldest = None, None  # oldest: when the first change not yet committed was applied
        try:
            target = self.bench.connect(self.bench.db2, "dst", autocommit=False)
            for event in stream:
                if self.stop.is_set():
                    break
                if not isinstance(event, HeartbeatLogEvent):
                    with target.cursor() as cur:
                        for row in event.rows:
                            if isinstance(event, DeleteRowsEvent):
                                cur.execute("DELETE FROM b WHERE id = %s", (row["values"]["id"],))
                            else:
                                v = row["after_values"] if isinstance(event, UpdateRowsEvent) else row["values"]
                                cur.execute(upsert, (v["id"], v["bkey"], v["value"], v["version"], v["updated_at"]))
                    oldest = oldest or time.monotonic()
                idle = isinstance(event, HeartbeatLogEvent)
                if oldest and (not self.group_s or idle or time.monotonic() - oldest >= self.group_s):
                    target.commit()
                    self.commits += 1
                    oldest = None
        except Exception as exc:  # noqa: BLE001 - reported with the results
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            stream.close()
            if target is not None:
                target.close()

    def finish(self) -> dict:
        self.stop.set()
        self.thread.join(timeout=10)
        return {"commits": self.commits}


class LabCdc:
    """The lab's CDC (apps/sync/engine/cdc.py, the cdc-binlog scenario's syncer: a consistent
    snapshot, then each step reads its open binlog stream to where the binlog ended when the step
    began and applies the source transactions in batches, each with its offset in one transaction
    of B), stepped in a thread of its own while the workload writes, as often as it can: a step
    that found nothing new waits IDLE_S first."""

    IDLE_S = 0.005

    def __init__(self, bench: Bench):
        self.bench = bench
        self.stop = threading.Event()
        self.error: str | None = None
        self.steps = 0

    def start(self) -> None:
        from apps.sync.engine.cdc import CdcSyncer

        self.syncer = CdcSyncer(self.bench.context(), self.bench.pair)
        self.syncer.start()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            while not self.stop.is_set():
                before = self.syncer.committed
                self.syncer.step()
                self.steps += 1
                if self.syncer.committed == before:
                    self.stop.wait(self.IDLE_S)
        except Exception as exc:  # noqa: BLE001 - reported with the results
            self.error = f"{type(exc).__name__}: {exc}"

    def finish(self) -> dict:
        """Stops the stepping. A step drains the binlog to its end and cannot be told to stop, so
        when the applier is far behind, its connections to B are killed (a fault the syncer takes
        as any other: it gives the step up)."""
        self.stop.set()
        self.thread.join(timeout=2)
        failed, killed = self.syncer.failed_steps, False
        for _ in range(15):  # a daemon thread still stepping after that is left behind
            if not self.thread.is_alive():
                break
            self.bench.sup.fault(self.bench.cluster.name, "db2", "kill-connections")
            killed = True
            self.thread.join(timeout=2)
        if not self.thread.is_alive():
            self.syncer.close()  # its replication stream stays open between steps: not into the next kind
        counts = dict(self.syncer.counts)
        return {"steps": self.steps, "failed_steps": failed, "applied": counts, "stopped_by_a_kill": killed}


def fresh_pair(bench: Bench, rows: int) -> None:
    """A with `rows` rows of its own for a CDC run, and B empty for the syncer's snapshot."""
    small = Bench(bench.sup, bench.cluster, rows, bench.seed)
    try:
        load_a(small, lambda msg: None)
    finally:
        small.close()


def caught_up(bench: Bench) -> bool:
    """Whether B equals A within CATCH_UP_S (the workload has stopped): what B still lacks then is
    counted as never applied."""
    conn = bench.connect(bench.db1, "src")
    try:
        a_sum = tables_checksum(conn, "a")
    finally:
        conn.close()
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        conn = bench.connect(bench.db2, "dst")
        try:
            if tables_checksum(conn, "b") == a_sum:
                return True
        finally:
            conn.close()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def cdc_run(bench: Bench, args: Any, syncer: Any) -> dict:
    """One CDC kind: B made equal to A by the syncer's start, then the workload writes while the
    syncer follows, and B gets CATCH_UP_S to catch up."""
    syncer.start()
    try:
        high = arm_probe(bench)
        cpu0 = cpu_snapshot(bench)
        proc, receive = run_workload(bench, args.cdc_rate, args.cdc_seconds, args.cdc_clients)
        sent = receive.recv()
        proc.join()
        cpu1 = cpu_snapshot(bench)
        equal = caught_up(bench)
    finally:
        own = syncer.finish()
    stamps = disarm_probe(bench)
    return lags(sent["writes"], stamps[high:]) | {
        "b_equals_a": equal,
        "error": syncer.error,
        "workload_errors": sent["errors"],
        "syncer": own,
        "cores_busy": cores_busy(cpu0, cpu1),
    }


def measure_cdc(bench: Bench, args: Any, log: Callable[[str], None]) -> dict:
    out = {}
    makers = {
        "lab-cdc": LabCdc,
        "minimal-cdc": MinimalCdc,
        "minimal-cdc-grouped": lambda bench: MinimalCdc(bench, group_ms=GROUP_MS),
    }
    for kind, make in makers.items():
        fresh_pair(bench, args.cdc_rows)
        try:
            out[kind] = cdc_run(bench, args, make(bench))
        except Exception as exc:  # noqa: BLE001 - a kind that cannot run is reported, not fatal
            out[kind] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"cdc, {kind}: {out[kind]}")
    return out


# The report ------------------------------------------------------------------------------------------


def median_round(rounds: list[dict]) -> dict | None:
    ok = [r for r in rounds if "seconds" in r]
    if not ok:
        return None
    return common.median_of(ok, "seconds") | {"seconds_rounds": [r["seconds"] for r in ok]}


def run(args: Any, log: Callable[[str], None]) -> dict:
    common.setup_django()
    from apps.cluster.conf import supervisor
    from apps.sync.common import BINLOG_OPTIONS

    sup = supervisor()
    name = f"bench-sync-{os.getpid()}"
    options = [*BINLOG_OPTIONS, *SIZING]
    cluster = sup.up(name, mariadb=2, owner_pid=os.getpid(), options=options)
    bench = None
    try:
        log("2 dedicated MariaDB nodes: " + ", ".join(f"{n.name} :{n.port}" for n in cluster.of_kind("mariadb")))
        bench = Bench(sup, cluster, args.rows)
        conn = bench.connect(bench.db1)
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL VARIABLES")
            variables = {k: v for k, v in cur.fetchall() if k in VARIABLES}
        conn.close()
        loaded = load_a(bench, log)
        a_sum = tuple(loaded["checksum"])
        copies = measure_copies(bench, args, a_sum, log)
        verification = measure_verification(bench, args, log)
        cdc = measure_cdc(bench, args, log) if args.cdc_seconds > 0 else {}
    finally:
        if bench is not None:
            bench.close()
        sup.down(name, missing_ok=True)
    return {
        "options": options,
        "variables": variables,
        "load": loaded,
        "copy": copies,
        "verification": verification,
        "cdc": cdc,
    }


VARIABLES = (
    "version log_bin binlog_format binlog_row_image sync_binlog innodb_flush_log_at_trx_commit "
    "innodb_buffer_pool_size".split()
)


def paired(rounds: dict, kind: str, base: str) -> list[float | None]:
    """kind's rate over base's, round by round: the kinds of one round share the machine's moment."""
    return [
        common.ratio(a.get("rows_per_s"), b.get("rows_per_s")) for a, b in zip(rounds[kind], rounds[base], strict=True)
    ]


def judged(target: float, ratios: list[float | None], of_medians: float | None) -> dict:
    """A ratio target judged on the median of the rounds' ratios (as bench/transactions.py does)."""
    known = sorted(r for r in ratios if r is not None)
    value = known[len(known) // 2] if known else None
    return {
        "target": target,
        "value": value,
        "rounds": ratios,
        "ratio_of_medians": of_medians,
        "met": value is not None and value >= target,
    }


def report(args: Any, measured: dict) -> dict:
    copy = {k: median_round(v) for k, v in measured["copy"].items()}
    verify = {k: median_round(v) for k, v in measured["verification"].items()}
    cdc = measured["cdc"]

    def rate(results: dict, kind: str) -> float | None:
        return (results.get(kind) or {}).get("rows_per_s")

    def target(part: str, results: dict, kind: str, base: str, at_least: float) -> dict:
        of_medians = common.ratio(rate(results, kind), rate(results, base))
        return judged(at_least, paired(measured[part], kind, base), of_medians)

    lab_cdc = cdc.get("lab-cdc") or {}
    p99 = (lab_cdc.get("lag_ms") or {}).get("p99")
    return {
        "when": common.stamp(),
        "machine": common.machine(load=common.load()),
        "server": {
            "where": "two dedicated MariaDB nodes (supervisor): db1 holds A, db2 holds B; clients connect to the "
            "servers' ports, not through the nodes' fault proxies",
            "options": measured["options"],
            "variables": measured["variables"],
        },
        "rows": args.rows,
        "rounds": args.rounds,
        "chunk": args.chunk,
        "workers": args.workers,
        "load": measured["load"],
        "copy": copy,
        "copy_rounds": measured["copy"],
        "verification": verify,
        "verification_rounds": measured["verification"],
        "cdc": {"rate": args.cdc_rate, "seconds": args.cdc_seconds, "rows": args.cdc_rows, "clients": args.cdc_clients}
        | {"catch_up_s": CATCH_UP_S}
        | cdc,
        "targets": {
            "copy": target("copy", copy, "lab-copy", "mariadb-dump", TARGET_COPY),
            "copy_upsert": target("copy", copy, "lab-copy-upsert", "mariadb-dump", TARGET_COPY),
            "verification": target("verification", verify, "lab-checksum", "checksum-table", TARGET_VERIFY),
            "cdc_lag_p99_ms": {
                "target": TARGET_LAG_P99_MS,
                "value": p99,
                "met": bool(p99 is not None and p99 < TARGET_LAG_P99_MS and not lab_cdc.get("missing")),
            },
        },
    }


def num(x: float | None, spec: str = ",.0f", none: str = "–") -> str:
    return none if x is None else format(x, spec)


def table(out: dict) -> str:
    v = out["server"]["variables"]
    pool = int(v.get("innodb_buffer_pool_size", 0)) // 2**20
    lines = [
        f"{out['rows']:,} rows, median of {out['rounds']} rounds; MariaDB {v.get('version')}, binlog "
        f"{v.get('binlog_format')}, sync_binlog {v.get('sync_binlog')}, innodb_flush_log_at_trx_commit "
        f"{v.get('innodb_flush_log_at_trx_commit')}, buffer pool {pool} MB; {out['machine']['cores']} cores, "
        f"load average {out['machine']['load']} at the end; {out['when']}",
        "",
        "| part | kind | seconds (rounds) | rows/s | ratio to the baseline | B equals A |",
        "|---|---|---:|---:|---:|---|",
    ]
    for part, results, base in (
        ("copy", out["copy"], "mariadb-dump"),
        ("verify", out["verification"], "checksum-table"),
    ):
        base_rate = (results.get(base) or {}).get("rows_per_s")
        for kind, r in results.items():
            if r is None:
                rounds = out[f"{'copy' if part == 'copy' else 'verification'}_rounds"][kind]
                error = next((x.get("error") for x in rounds if x.get("error")), "did not run")
                lines.append(f"| {part} | {kind} | – | – | – | {error} |")
                continue
            secs = ", ".join(f"{x:.2f}" for x in r["seconds_rounds"])
            lines.append(
                f"| {part} | {kind} | {r['seconds']:.2f} ({secs}) | {r['rows_per_s']:,} "
                f"| {common.ratio(r['rows_per_s'], base_rate) or 0:.2f} | {'yes' if r['equal'] else '**no**'} |"
            )
    c = out["cdc"]
    lines += [
        "",
        f"CDC: {c['rate']:,} writes/s for {c['seconds']:g} s on an A of {c['rows']:,} rows",
        "",
        "| kind | writes | write rate /s | apply rate /s | apply / write | lag p50 / p90 / p99 / max ms "
        f"| not applied | B = A {CATCH_UP_S:g} s after |",
        "|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for kind in CDC_KINDS:
        r = c.get(kind)
        if not r:
            continue
        if "lag_ms" not in r:
            lines.append(f"| {kind} | – | – | – | – | – | – | {r.get('error')} |")
            continue
        lag = r["lag_ms"]
        lines.append(
            f"| {kind} | {r['writes']:,} | {num(r['write_rate'])} | {num(r['apply_rate'])} "
            f"| {num(r['apply_vs_write'], '.2f')} "
            f"| {' / '.join(num(lag[p], ',.0f', 'never') for p in ('p50', 'p90', 'p99', 'max'))} | {r['missing']:,} "
            f"| {'yes' if r['b_equals_a'] else 'no'}{' (' + r['error'] + ')' if r.get('error') else ''} |"
        )
    t = out["targets"]

    def met(x: dict) -> str:
        return "met" if x["met"] else "not met"

    def ratio(x: Any) -> str:
        return f"{x:.2f}×" if x is not None else "–"

    def rounds(x: dict) -> str:
        return ", ".join(num(r, ".2f") for r in x["rounds"])

    lab = c.get("lab-cdc") or {}
    if t["cdc_lag_p99_ms"]["value"] is not None:
        p99 = f"{t['cdc_lag_p99_ms']['value']:,.0f} ms"
    elif lab.get("missing"):
        p99 = f"never ({lab['missing']:,} writes not in B {CATCH_UP_S:g} s after the workload stopped)"
    else:
        p99 = "–"

    lines += [
        "",
        f"- Full copy, lab ≥ {t['copy']['target']} × mariadb-dump | mariadb, the median of the rounds' ratios: "
        f"**{ratio(t['copy']['value'])}**, {met(t['copy'])} (rounds {rounds(t['copy'])}; its load-data writer, "
        f"{out['workers']} chunks at a time); for reference, its upsert writer one chunk at a time "
        f"{ratio(t['copy_upsert']['value'])} (rounds {rounds(t['copy_upsert'])}).",
        f"- Verification, the lab's chunk checksums ≥ {t['verification']['target']} × CHECKSUM TABLE on both "
        f"servers: **{ratio(t['verification']['value'])}**, {met(t['verification'])} (rounds "
        f"{rounds(t['verification'])}).",
        f"- CDC, lag p99 < {t['cdc_lag_p99_ms']['target']:.0f} ms at {c['rate']:,} writes/s: **{p99}**, "
        f"{met(t['cdc_lag_p99_ms'])}; the lab's apply rate {num(lab.get('apply_vs_write'), '.2f')} × the write rate.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows in A for the copy and the checksums")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the kinds take turns (default 3)")
    parser.add_argument("--chunk", type=int, default=10_000, help="rows per chunk, copy and checksums (default 10000)")
    parser.add_argument("--workers", type=int, default=4, help="chunks the lab's copy writes at once (default 4)")
    parser.add_argument("--cdc-rate", type=int, default=1000, help="workload writes per second (default 1000)")
    parser.add_argument("--cdc-seconds", type=float, default=30.0, help="workload duration; 0 skips CDC (default 30)")
    parser.add_argument("--cdc-clients", type=int, default=4, help="the workload's connections (default 4)")
    parser.add_argument("--cdc-rows", type=int, default=10_000, help="rows in A when CDC starts (default 10000)")
    parser.add_argument("--no-publish", action="store_true", help="print the table; write no results file or README")
    args = parser.parse_args()
    for name in ("rows", "rounds", "chunk", "workers", "cdc_rate", "cdc_clients", "cdc_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.chunk > MAX_CHUNK:
        parser.error(f"--chunk must be at most {MAX_CHUNK:,} (the lab's own limit)")
    if args.cdc_seconds < 0:
        parser.error("--cdc-seconds must be 0 or more")
    log = common.logger("sync")
    common.exit_on_sigterm()  # so the nodes go down
    try:
        measured = run(args, log)
    except Exception as exc:  # noqa: BLE001 - the benchmark could not run (no server, no binaries ...)
        log(f"error: {type(exc).__name__}: {exc}")
        return 1
    out = report(args, measured)
    if args.no_publish:
        print(table(out))
    else:
        common.publish("sync", out, table)
    unequal = [k for k, r in out["copy"].items() if r and not r["equal"]]
    if unequal:
        log(f"a copy left B different from A: {unequal}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
