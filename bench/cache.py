#!/usr/bin/env python
"""Cache benchmark: the cache lab's cache-aside and leases against raw redis-py and dogpile.cache.

    .venv/bin/python bench/cache.py [--rounds 3] [--seconds 3] [--hit-seconds 2] [--clients 4]
        [--keys 1000] [--herd-rounds 4] [--quick] [--no-publish]

On the lab nodes of the environment (LAB_MARIADB_URL, LAB_REDIS_URL; `make bench` gives them ports
of their own), in one run, with no events recorded (a context whose `cmd` only calls, whose `emit`
and history do nothing):

1. Hit path: the lab's `Client.read` of a cached hot key against a raw redis-py `GET` of the same
   entry on a client set up as the lab's (`decode_responses`), one thread, the two taking turns in
   short slices within each round. Target: the lab's at least 0.8x.
2. The cache-aside scenario's workload (Zipf keys, s = 1.1, 90 % reads; a write commits the row
   and deletes the entry; TTL 2 s) from `--clients` threads for `--seconds`, each side starting
   from an empty cache, the sides taking turns within each round with the same key sequences:
   the lab's cache-aside `Client` against dogpile.cache's Redis region (`get_or_create`, a region
   per client as separate application processes would have), set up both ways: with its
   distributed Redis lock, and with the backend's default lock (in the process); and the lab's
   `LeaseClient` (leases in Lua). Targets: cache-aside at least 0.9x the faster dogpile set-up's
   operations/s, leases at least 0.7x cache-aside's reads/s.
3. Hot-key expiry: `--clients`×2 threads read one hot key every 20 ms, `--herd-rounds` rounds of
   exactly one expiry (the entry filled afresh, then read for 1.5 TTLs of 1 s), the rebuild query
   made slow on the server (`SLEEP(0.1)`) as the thundering-herd scenario makes it: the lab's
   readers (apps/cache/engine/herd.py: none = plain cache-aside, mutex, lease, xfetch) and
   dogpile's region in both set-ups. Target: the lab's leases make fewer database reads per expiry
   than dogpile.

Database reads are counted by the server on both sides the same way: MariaDB's global
`Com_select` before and after each part (the bench sends no other SELECT meanwhile). Ratios are
the median of the rounds' ratios. Writes bench/results/cache.json and the table in
bench/README.md. Exits 0 whatever the numbers, 2 on bad arguments, 1 when the benchmark could not
run.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import threading
import time
from typing import Any

import common

RUN_ID = 980_000_000 + os.getpid() % 1_000_000  # a namespace of its own on the lab nodes
SEED = 1
SLICES = 10  # a hit-path round alternates the two sides this many times: load spikes hit both alike
TARGET_HIT = 0.8
TARGET_DOGPILE = 0.9
TARGET_LEASES = 0.7
WORKLOAD = {"zipf": 1.1, "read_ratio": 0.9, "ttl_ms": 2000}  # the cache-aside scenario's defaults
HERD = {"ttl_ms": 1000, "rebuild_ms": 100, "think_ms": 20, "lock_ms": 2000, "beta": 1.0}
HERD_LAB = ("none", "mutex", "lease", "xfetch")
# dogpile.cache with its Redis lock, and with the backend's default lock (in the process)
DOGPILE = ("dogpile", "dogpile-local")
# For reference, not judged: leases whose waiting readers ask again after this many ms rather than
# LeaseClient's default 50 (a fill takes a millisecond or two here).
FAST_RETRY_MS = 2


# Recording off ---------------------------------------------------------------------------------


class NoHistory:
    def invoke(self, process: str, f: str, value: Any = None) -> None:
        return None

    def ok(self, op: Any, value: Any = None) -> None:
        return None

    def fail(self, op: Any, value: Any = None, error: str | None = None) -> None:
        return None

    def info(self, op: Any, error: str | None = None) -> None:
        return None


class Quiet:
    """A run context with recording off: `cmd` only calls, `emit` and the history do nothing."""

    def __init__(self, nodes: Any, **params: Any):
        self.run_id, self.nodes, self.params = nodes.run_id, nodes, params
        self.seed, self.rng = SEED, random.Random(SEED)
        self.history = NoHistory()
        self.cancelled = threading.Event()
        self._began = time.perf_counter()

    @property
    def clock(self) -> float:
        return (time.perf_counter() - self._began) * 1000.0

    def emit(self, kind: str, actor: str = "", to: str = "", label: str = "", data: Any = None, **fields: Any) -> None:
        return None

    def cmd(self, node: str, command: str, call: Any, actor: str = "", summary: Any = None) -> Any:
        return call()

    def step(self) -> None:
        return None


# dogpile.cache, set up as people deploy it -----------------------------------------------------


def region(url: str, ttl_ms: int, lock_ms: int, distributed: bool) -> Any:
    """A dogpile.cache Redis region. Entries regenerate after the TTL under dogpile's lock, the
    other readers served the old value meanwhile; Redis keeps them twice as long so that there is
    an old value to serve. `distributed`: the lock is a Redis lock, one regenerator across
    processes; otherwise the backend's default, a lock in the process (here: in the client)."""
    from dogpile.cache import make_region

    ttl_s = ttl_ms / 1000.0
    arguments = {"url": url, "redis_expiration_time": max(1, math.ceil(2 * ttl_s))}
    if distributed:
        arguments |= {
            "distributed_lock": True,
            "thread_local_lock": False,
            "lock_timeout": lock_ms / 1000.0,
            "lock_sleep": 0.025,  # as often as the lab's waiting readers look again
        }
    return make_region().configure("dogpile.cache.redis", expiration_time=ttl_s, arguments=arguments)


class DogpileClient:
    """The same reads and writes as the lab's Client, through a dogpile region of its own."""

    def __init__(
        self,
        name: str,
        store: Any,
        url: str,
        *,
        ttl_ms: int,
        lock_ms: int,
        distributed: bool,
        query: str,
        args: tuple = (),
    ):
        self.name, self.store = name, store
        self.conn = store.db()
        self.region = region(url, ttl_ms, lock_ms, distributed)
        self.query, self.args = query, args
        self.rng = random.Random(f"{SEED}:{name}")

    def key(self, key: str) -> str:
        return self.store.nodes.key("dogpile", key)

    def read(self, key: str) -> int:
        def create() -> tuple[int, str]:
            with self.conn.cursor() as cur:
                cur.execute(self.query, (key, *self.args))
                value, version = cur.fetchone()
            return int(version), value

        return self.region.get_or_create(self.key(key), create)[0]

    def write(self, key: str) -> int:
        from apps.cache.engine.store import UPDATE_ITEM, value_of

        with self.conn.cursor() as cur:
            cur.execute(UPDATE_ITEM, (value_of(self.rng), key))
            version = int(cur.lastrowid)
        self.region.delete(self.key(key))
        return version

    def close(self) -> None:
        self.conn.close()
        self.region.backend.writer_client.close()


# Measuring -------------------------------------------------------------------------------------


class SelectCounter:
    """MariaDB's own count of SELECT statements, from a connection of its own."""

    def __init__(self, store: Any):
        self.conn = store.db()

    def __call__(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Com_select'")
            return int(cur.fetchone()[1])


def hit_path(nodes: Any, store: Any, keys: list[str], args: Any, log: Any) -> dict:
    import redis

    from apps.cache.engine.clients import Client

    hot = keys[0]
    ctx = Quiet(nodes)
    client = Client(ctx, "c1", store, ttl_ms=3_600_000)
    raw = redis.Redis.from_url(nodes.redis_url, decode_responses=True)
    try:
        client.read(hot)  # a miss: fills the entry for an hour
        name = store.cache_key(hot)
        sides = {"lab": lambda: client.read(hot), "redis-py": lambda: raw.get(name)}
        for op in sides.values():
            common.count_for(op, 0.3)
        rounds: dict[str, list[float]] = {"lab": [], "redis-py": []}
        for r in range(args.rounds):
            totals = {who: [0, 0.0] for who in sides}
            for i in range(SLICES):
                order = list(sides.items()) if (r + i) % 2 == 0 else list(sides.items())[::-1]
                for who, op in order:
                    n, elapsed = common.count_for(op, args.hit_seconds / SLICES)
                    totals[who][0] += n
                    totals[who][1] += elapsed
            for who, (n, elapsed) in totals.items():
                rounds[who].append(round(n / elapsed, 1))
            log(f"hit path round {r + 1}: lab {rounds['lab'][-1]}/s, redis-py GET {rounds['redis-py'][-1]}/s")
        if client.misses != 1:
            raise RuntimeError(f"the hot key missed {client.misses} times: it was meant to stay cached")
    finally:
        client.close()
        raw.close()
    ratios = [a / b for a, b in zip(rounds["lab"], rounds["redis-py"], strict=True)]
    ratio = round(statistics.median(ratios), 3)
    return {
        "lab_per_s": statistics.median(rounds["lab"]),
        "redis_py_per_s": statistics.median(rounds["redis-py"]),
        "ratio": ratio,
        "round_ratios": [round(x, 3) for x in ratios],
        "target": TARGET_HIT,
        "met": ratio >= TARGET_HIT,
        "rounds": rounds,
    }


def make_clients(side: str, nodes: Any, store: Any, n: int) -> list[Any]:
    from apps.cache.engine.clients import Client
    from apps.cache.engine.leases import LeaseClient, Leases
    from apps.cache.engine.store import SELECT_ITEM

    ttl = WORKLOAD["ttl_ms"]
    names = [f"c{i}" for i in range(1, n + 1)]
    if side in DOGPILE:
        return [
            DogpileClient(
                c,
                store,
                nodes.redis_url,
                ttl_ms=ttl,
                lock_ms=HERD["lock_ms"],
                distributed=side == "dogpile",
                query=SELECT_ITEM,
            )
            for c in names
        ]
    ctx = Quiet(nodes)
    if side == "leases":
        leases = Leases(ctx, store, lease_ms=HERD["lock_ms"])
        return [LeaseClient(ctx, c, store, leases, ttl_ms=ttl) for c in names]
    if side == "leases-fast":
        leases = Leases(ctx, store, lease_ms=HERD["lock_ms"])
        return [LeaseClient(ctx, c, store, leases, ttl_ms=ttl, retry_ms=FAST_RETRY_MS) for c in names]
    return [Client(ctx, c, store, ttl_ms=ttl) for c in names]


def cold(nodes: Any, store: Any, keys: list[str]) -> None:
    """Every side starts from an empty cache: its entries, leases and locks gone."""
    r = store.redis()
    names = [n for k in keys for n in (store.cache_key(k), nodes.key("lease", k), nodes.key("dogpile", k))]
    names += [f"_lock{nodes.key('dogpile', k)}" for k in keys]
    for i in range(0, len(names), 500):
        r.delete(*names[i : i + 500])


def workload_once(side: str, nodes: Any, store: Any, keys: list[str], r: int, args: Any, selects: Any) -> dict:
    """`--clients` threads, each its own seeded Zipf keys and mix (the same for every side of a
    round), for `--seconds`; operations and reads per second, and the SELECTs the server ran."""
    from apps.cache.engine.workload import Zipf, mix

    cold(nodes, store, keys)
    clients = make_clients(side, nodes, store, args.clients)
    counts = {c.name: [0, 0] for c in clients}
    errors: list[BaseException] = []
    start = threading.Barrier(len(clients) + 1)

    def work(client: Any) -> None:
        rng = random.Random(f"{SEED}:{r}:{client.name}")
        zipf = Zipf(keys, WORKLOAD["zipf"], rng)
        try:
            start.wait()
            end = time.perf_counter() + args.seconds
            while time.perf_counter() < end:
                key = zipf.draw()
                if mix(rng, WORKLOAD["read_ratio"]) == "read":
                    client.read(key)
                    counts[client.name][0] += 1
                else:
                    client.write(key)
                    counts[client.name][1] += 1
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,), name=c.name) for c in clients]
    try:
        for t in threads:
            t.start()
        before = selects()
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        db = selects() - before
        # A lease reader told that another holds the key's token sleeps, then asks again.
        waits = sum(getattr(c, "waits", 0) for c in clients)
    finally:
        for c in clients:
            c.close()
    if errors:
        raise errors[0]
    reads, writes = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    return {
        "ops_per_s": round((reads + writes) / elapsed, 1),
        "reads_per_s": round(reads / elapsed, 1),
        "reads": reads,
        "writes": writes,
        "db_reads": db,
        "db_reads_per_read": round(db / reads, 4) if reads else None,
        "lease_waits": waits,
    }


def workloads(nodes: Any, store: Any, keys: list[str], args: Any, log: Any, selects: Any) -> dict:
    sides = ["lab", *DOGPILE, "leases", "leases-fast"]
    rounds: dict[str, list[dict]] = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]  # a different side goes first each round
        for side in order:
            rounds[side].append(workload_once(side, nodes, store, keys, r, args, selects))
        log(
            f"workload round {r + 1}: "
            + ", ".join(f"{s} {rounds[s][-1]['ops_per_s']} ops/s ({rounds[s][-1]['db_reads']} DB reads)" for s in sides)
        )

    def ratio_of(ratios: list[float]) -> tuple[float, list[float]]:
        return round(statistics.median(ratios), 3), [round(x, 3) for x in ratios]

    # Against the faster of dogpile's two set-ups in each round.
    best = [max(rounds[d][i]["ops_per_s"] for d in DOGPILE) for i in range(args.rounds)]
    vs_dogpile, dogpile_rounds = ratio_of([x["ops_per_s"] / b for x, b in zip(rounds["lab"], best, strict=True)])
    vs_aside, aside_rounds = ratio_of(
        [x["reads_per_s"] / y["reads_per_s"] for x, y in zip(rounds["leases"], rounds["lab"], strict=True)]
    )
    fast, fast_rounds = ratio_of(
        [x["reads_per_s"] / y["reads_per_s"] for x, y in zip(rounds["leases-fast"], rounds["lab"], strict=True)]
    )
    return {
        "sides": {s: common.median_of(rounds[s], "ops_per_s") for s in sides},
        "rounds": rounds,
        "lab_vs_dogpile": {
            "ratio": vs_dogpile,
            "round_ratios": dogpile_rounds,
            "target": TARGET_DOGPILE,
            "met": vs_dogpile >= TARGET_DOGPILE,
        },
        "leases_fast_vs_aside": {"ratio": fast, "round_ratios": fast_rounds, "retry_ms": FAST_RETRY_MS},
        "leases_vs_aside": {
            "ratio": vs_aside,
            "round_ratios": aside_rounds,
            "target": TARGET_LEASES,
            "met": vs_aside >= TARGET_LEASES,
        },
    }


def herd_readers(variant: str, nodes: Any, store: Any, clients: int) -> tuple[list[Any], Any]:
    """The hot key's readers of one variant, and a function that fills its entry afresh."""
    from apps.cache.engine.herd import REBUILD_ITEM, HerdClient
    from apps.cache.engine.leases import Leases

    p = HERD
    if variant in DOGPILE:
        readers = [
            DogpileClient(
                f"{variant}-c{i}",
                store,
                nodes.redis_url,
                ttl_ms=p["ttl_ms"],
                lock_ms=p["lock_ms"],
                distributed=variant == "dogpile",
                query=REBUILD_ITEM,
                args=(p["rebuild_ms"] / 1000.0,),
            )
            for i in range(1, clients + 1)
        ]
        return readers, readers[0].read
    ctx = Quiet(nodes, clients=clients, **HERD)
    # The lease interval is the lock's, as the thundering-herd scenario sets it.
    leases = Leases.for_store(ctx, store, lease_ms=p["lock_ms"]) if variant == "lease" else None
    readers = [HerdClient(ctx, f"{variant}-c{i}", store, variant, leases) for i in range(1, clients + 1)]

    def warm(key: str) -> None:
        version, value, ms = readers[0].rebuild(key)
        readers[0].fill(key, version, value, ms)

    return readers, warm


def herd(variant: str, nodes: Any, store: Any, keys: list[str], clients: int, rounds: int) -> dict:
    """`rounds` expiries of the hot key under `clients` readers: each round fills the entry afresh
    and lets the readers read it every `think_ms` for 1.5 TTLs, so it expires exactly once in the
    round (the refill's own expiry comes after the round's end)."""
    from apps.cache.engine.herd import p99

    hot, p = keys[0], HERD
    readers, warm = herd_readers(variant, nodes, store, clients)
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(client: Any, deadline: float) -> None:
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                client.read(hot)
                ms = (time.perf_counter() - began) * 1000.0
                with lock:
                    latencies.append(ms)
                time.sleep(p["think_ms"] / 1000.0)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            errors.append(exc)

    try:
        for _ in range(rounds):
            cold(nodes, store, [hot])
            warm(hot)
            deadline = time.perf_counter() + 1.5 * p["ttl_ms"] / 1000.0
            threads = [threading.Thread(target=work, args=(c, deadline)) for c in readers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
    finally:
        for c in readers:
            c.close()
    return {"reads": len(latencies), "p99_ms": p99(latencies)}


def expiry(nodes: Any, store: Any, keys: list[str], args: Any, log: Any, selects: Any) -> dict:
    clients, rounds = args.clients * 2, args.herd_rounds
    out = {}
    for variant in (*HERD_LAB, *DOGPILE):
        before = selects()
        got = herd(variant, nodes, store, keys, clients, rounds)
        db = selects() - before - rounds  # less each round's fresh fill
        p99_ms = got["p99_ms"]
        out[variant] = {
            "reads": got["reads"],
            "db_reads": db,
            "db_reads_per_expiry": round(db / rounds, 2),
            "p99_ms": round(p99_ms, 1) if p99_ms is not None else None,
        }
        log(
            f"expiry {variant}: {db} DB reads in {rounds} expiries, {got['reads']} reads, p99 {out[variant]['p99_ms']} ms"
        )
    lease = out["lease"]["db_reads_per_expiry"]
    dogpile = min(out[d]["db_reads_per_expiry"] for d in DOGPILE)  # the fewer of dogpile's two
    return {
        "clients": clients,
        "rounds": rounds,
        "settings": HERD,
        "variants": out,
        "target": {"lab": "lease", "lab_per_expiry": lease, "dogpile_per_expiry": dogpile, "met": lease < dogpile},
    }


# Report ----------------------------------------------------------------------------------------


def table(out: dict) -> str:
    hit, wl, ex = out["hit_path"], out["workload"], out["expiry"]
    s = wl["sides"]
    mark = {True: "met", False: "not met"}

    def rounds_of(result: dict) -> str:
        return ", ".join(f"{x:.2f}" for x in result["round_ratios"])

    faster = max(DOGPILE, key=lambda d: s[d]["ops_per_s"])
    lines = [
        f"{out['settings']['rounds']} rounds; {out['settings']['clients']} clients, {out['settings']['keys']} keys; "
        f"{out['machine']['cores']} cores, load average {out['machine']['load_before']} -> "
        f"{out['machine']['load_after']}; {out['when']}",
        "",
        "| comparison | lab | baseline | lab / baseline (rounds) | target |",
        "|---|---:|---:|---:|---|",
        f"| hit path: `Client.read` vs redis-py `GET`, reads/s | {hit['lab_per_s']:,.0f} "
        f"| {hit['redis_py_per_s']:,.0f} | {hit['ratio']:.2f} ({rounds_of(hit)}) | ≥ {TARGET_HIT}: {mark[hit['met']]} |",
        f"| Zipf workload: cache-aside vs dogpile.cache (the faster set-up each round), ops/s "
        f"| {s['lab']['ops_per_s']:,.0f} | {s[faster]['ops_per_s']:,.0f} | {wl['lab_vs_dogpile']['ratio']:.2f} "
        f"({rounds_of(wl['lab_vs_dogpile'])}) | ≥ {TARGET_DOGPILE}: {mark[wl['lab_vs_dogpile']['met']]} |",
        f"| Zipf workload: leases vs cache-aside, reads/s | {s['leases']['reads_per_s']:,.0f} "
        f"| {s['lab']['reads_per_s']:,.0f} | {wl['leases_vs_aside']['ratio']:.2f} ({rounds_of(wl['leases_vs_aside'])}) "
        f"| ≥ {TARGET_LEASES}: {mark[wl['leases_vs_aside']['met']]} |",
        "",
        f"For reference, leases whose waiting readers retry after {FAST_RETRY_MS} ms: "
        f"{wl['leases_fast_vs_aside']['ratio']:.2f} × cache-aside's reads/s ({rounds_of(wl['leases_fast_vs_aside'])}).",
        "",
        "| Zipf workload (median round) | ops/s | reads/s | DB reads per read | lease waits |",
        "|---|---:|---:|---:|---:|",
    ]
    for side in ("lab", *DOGPILE, "leases", "leases-fast"):
        v = s[side]
        lines.append(
            f"| {NAMES[side]} | {v['ops_per_s']:,.0f} | {v['reads_per_s']:,.0f} | {v['db_reads_per_read']:.3f} "
            f"| {v['lease_waits']:,} |"
        )
    lines += [
        "",
        f"Hot-key expiry: {ex['clients']} clients read one key every {HERD['think_ms']} ms, {ex['rounds']} rounds "
        f"of one expiry each (the entry filled afresh, read for 1.5 TTLs of {HERD['ttl_ms']} ms), the rebuild "
        f"{HERD['rebuild_ms']} ms on the server:",
        "",
        "| read | DB reads per expiry | reads | read p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for variant, v in ex["variants"].items():
        lines.append(f"| {NAMES[variant]} | {v['db_reads_per_expiry']:.2f} | {v['reads']:,} | {v['p99_ms']} |")
    t = ex["target"]
    lines += [
        "",
        f"Target: the lab's leases make fewer DB reads per hot-key expiry than dogpile.cache (the fewer of its two "
        f"set-ups): {t['lab_per_expiry']:.2f} against {t['dogpile_per_expiry']:.2f}, {mark[t['met']]}.",
    ]
    return "\n".join(lines)


NAMES = {
    "lab": "lab cache-aside (`Client`)",
    "leases": "lab leases (`LeaseClient`)",
    "leases-fast": f"lab leases, waiting readers retry after {FAST_RETRY_MS} ms (reference)",
    "dogpile": "dogpile.cache region, Redis lock",
    "dogpile-local": "dogpile.cache region, default lock (in the client)",
    "none": "lab, no protection (cache-aside)",
    "mutex": "lab, mutex",
    "lease": "lab, leases",
    "xfetch": "lab, XFetch",
}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"bench/cache.py: {message}", file=sys.stderr)
        raise SystemExit(2)


def positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def main() -> int:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=positive(int), default=3, help="rounds of each comparison")
    parser.add_argument(
        "--seconds", type=positive(float), default=3.0, help="seconds of the workload per side per round"
    )
    parser.add_argument(
        "--hit-seconds", type=positive(float), default=2.0, help="seconds of the hit path per side per round"
    )
    parser.add_argument(
        "--clients", type=positive(int), default=4, help="client threads (twice as many in the expiry part)"
    )
    parser.add_argument("--keys", type=positive(int), default=1000, help="rows in the items table")
    parser.add_argument("--herd-rounds", type=positive(int), default=4, help="expiries of the hot key per read variant")
    parser.add_argument("--quick", action="store_true", help="a short try: 1 round of 1 s each, 2 TTLs")
    parser.add_argument("--no-publish", action="store_true", help="print the table; write no results file or README")
    args = parser.parse_args()
    if args.clients > 32:
        parser.error("--clients: at most 32")
    if args.keys > 100_000:
        parser.error("--keys: at most 100000")
    if args.quick:
        args.rounds, args.seconds, args.hit_seconds, args.herd_rounds = 1, 1.0, 1.0, 2
    log = common.logger("cache")
    common.exit_on_sigterm()
    common.setup_django()
    from django.conf import settings

    from apps.cache.engine.store import Store
    from apps.runs.nodes import SharedNodes

    nodes = SharedNodes(
        RUN_ID, mariadb_url=settings.LAB_MARIADB_URL, redis_url=settings.LAB_REDIS_URL, zk_hosts=settings.LAB_ZK_HOSTS
    )
    load_before = common.load()
    try:
        store = Store(nodes)
        keys = store.create(args.keys, random.Random(SEED))
        selects = SelectCounter(store)
        hit = hit_path(nodes, store, keys, args, log)
        wl = workloads(nodes, store, keys, args, log, selects)
        ex = expiry(nodes, store, keys, args, log, selects)
    finally:
        r = nodes.redis()
        locks = list(r.scan_iter(match=f"_lock{nodes.prefix}*", count=1000))
        if locks:
            r.delete(*locks)
        nodes.cleanup()
    out = {
        "benchmark": "cache",
        "when": common.stamp(),
        "machine": common.machine(load_before=load_before, load_after=common.load()),
        "settings": vars(args) | {"workload": WORKLOAD},
        "hit_path": hit,
        "workload": wl,
        "expiry": ex,
    }
    if args.no_publish:
        print(table(out))
    else:
        common.publish("cache", out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
