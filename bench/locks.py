#!/usr/bin/env python
"""Locks benchmark: what the lab's own locks cost next to the libraries' locks, and how optimistic
and pessimistic database locking scale with contention.

    .venv/bin/python bench/locks.py [--seconds 2] [--rounds 5] [--clients 1,2,4,8] [--hot-rows 1,4]

On the lab nodes of the environment (LAB_REDIS_URL, LAB_ZK_HOSTS, LAB_MARIADB_URL; `make bench`
gives them ports of their own), in one run, with no events recorded:
- uncontended acquire + release per second, one client in a loop: the lab's Redis lease (SET NX PX,
  Lua compare-and-delete) against redis-py's `redis.lock.Lock` on the same Redis, and the lab's
  ZooKeeper recipe (create, get_children, delete) against kazoo's `Lock` on the same ZooKeeper and
  session. The two of a pair take turns in short slices within each round (so a load spike from
  another job hits both alike); the ratio is the median of the rounds' ratios. Target: the lab's
  at least 0.9x the library's. (kazoo's Lock makes one round trip more per acquire than the
  recipe: a reused Lock lists the children once more, looking for a znode left by an earlier try;
  a new one first checks that its path exists.)
- contended increments per second, latency, and retries (optimistic) or lock waits (pessimistic)
  per increment, for each number of clients and of hot rows, with the lab's optimistic and
  pessimistic increments on the lab's storage (the median of a few batches per point).
Writes bench/results/locks.json and the table in bench/README.md. Exits 0 whatever the numbers,
non-zero only when the benchmark itself could not run.
"""

import argparse
import os
import random
import statistics

import common

TARGET = 0.9  # the lab's lock at this fraction of the library's, or better
RUN_ID = 990_000_000 + os.getpid() % 1_000_000  # a namespace of its own on the lab nodes


SLICES = 10  # each round alternates the two locks this many times, so load spikes hit both alike


def pair(name, lab, baseline, args, log):
    """Rounds in which the lab's lock and the library's take turns in short slices; the median
    round's rate of each, and their ratio."""
    for op in (lab, baseline):
        common.count_for(op, args.warmup)
    rounds = {"lab": [], "library": []}
    for r in range(args.rounds):
        totals = {"lab": [0, 0.0], "library": [0, 0.0]}
        for i in range(SLICES):
            order = (("lab", lab), ("library", baseline)) if (r + i) % 2 == 0 else (("library", baseline), ("lab", lab))
            for who, op in order:
                n, elapsed = common.count_for(op, args.seconds / SLICES)
                totals[who][0] += n
                totals[who][1] += elapsed
        for who, (n, elapsed) in totals.items():
            rounds[who].append(round(n / elapsed, 1))
        log(f"{name} round {r + 1}: lab {rounds['lab'][-1]}/s, library {rounds['library'][-1]}/s")
    lab_s, lib_s = statistics.median(rounds["lab"]), statistics.median(rounds["library"])
    # Within a round both ran under the same load: the ratio is the median of the rounds' ratios.
    ratios = [a / b for a, b in zip(rounds["lab"], rounds["library"], strict=True) if b]
    ratio = round(statistics.median(ratios), 3) if ratios else None
    return {
        "lab_per_s": lab_s,
        "library_per_s": lib_s,
        "ratio": ratio,
        "round_ratios": [round(r, 3) for r in ratios],
        "target": TARGET,
        "met": ratio is not None and ratio >= TARGET,
        "rounds": rounds,
    }


def uncontended(nodes, args, log):
    import redis
    from kazoo.client import KazooClient

    from apps.locks.engine.lease import Lease
    from apps.locks.engine.zk_harness import zk_endpoint
    from apps.locks.engine.zk_recipe import ZkLockRecipe

    out = {}
    client = redis.Redis.from_url(nodes.redis_url, decode_responses=True)
    try:
        lease = Lease(client, nodes.key("bench", "lease"), ttl_ms=10_000)
        theirs = client.lock(nodes.key("bench", "redis-py"), timeout=10)

        def lab():
            lease.acquire()
            lease.release()

        def library():
            theirs.acquire()
            theirs.release()

        out["redis"] = pair("redis", lab, library, args, log) | {
            "lab": "apps.locks.engine.lease.Lease",
            "library": "redis.lock.Lock",
        }
    finally:
        client.close()

    hosts, root = zk_endpoint(nodes)
    zk = KazooClient(hosts=hosts + root, timeout=10)
    zk.start(timeout=10)
    try:
        recipe = ZkLockRecipe(zk, "/bench/recipe", "bench")
        kazoo_lock = zk.Lock("/bench/kazoo", "bench")

        def lab():
            recipe.acquire()
            recipe.release()

        def library():
            kazoo_lock.acquire()
            kazoo_lock.release()

        out["zookeeper"] = pair("zookeeper", lab, library, args, log) | {
            "lab": "apps.locks.engine.zk_recipe.ZkLockRecipe",
            "library": "kazoo.recipe.lock.Lock",
        }
    finally:
        zk.stop()
        zk.close()
    return out


def contended(nodes, args, log):
    from apps.locks.engine.db import increment_batch
    from apps.locks.engine.storage import Storage

    hot_levels, client_levels = args.hot_rows, args.clients
    storage = Storage.on(nodes, rows=max(hot_levels)).setup()
    points = []
    for hot in hot_levels:
        for n in client_levels:
            for scheme in ("optimistic", "pessimistic"):
                tries = [batch(storage, scheme, n, hot, args.operations, increment_batch) for _ in range(args.repeats)]
                point = common.median_of(tries, "per_s")
                point["per_s_batches"] = [p["per_s"] for p in tries]
                point["operations"] = sum(p["operations"] for p in tries)
                points.append(point)
                log(
                    f"{scheme:<11} {n} clients, {hot} hot rows: {point['per_s']}/s, "
                    f"{point['latency_ms']} ms, {point['contended_per_op']} retries or waits per op"
                )
    counters = storage.counters()
    done = sum(p["operations"] for p in points)
    final = sum(value for value, _, _ in counters.values())
    return points, {"increments": done, "final_counter": final, "lost": done - final}


def batch(storage, scheme, n, hot, operations, increment_batch):
    """n clients, each with its own connection, each `operations` increments of a random hot row,
    by the lab's own batch (the sweep's), without logging critical sections."""
    names = [f"c{i}" for i in range(1, n + 1)]
    rngs = {name: random.Random(i * 7919 + hot) for i, name in enumerate(names, 1)}
    return increment_batch(storage, scheme, names, hot, operations, 0, rngs, sections=False)


def table(out):
    lines = [
        "| lock (uncontended acquire + release) | lab /s | library /s | lab / library (target ≥ 0.9) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in out["uncontended"].items():
        lines.append(
            f"| {name}: `{r['lab'].rsplit('.', 1)[-1]}` vs `{r['library']}` | {r['lab_per_s']:.0f} "
            f"| {r['library_per_s']:.0f} | {r['ratio']:.2f} {'✓' if r['met'] else '✗'} |"
        )
    lines += [
        "",
        "| hot rows | clients | optimistic /s | retries/op | pessimistic /s | waits/op | pessimistic / optimistic |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(p["hot_rows"], p["clients"], p["scheme"]): p for p in out["contended"]}
    for hot, n, _ in sorted(k for k in by if k[2] == "optimistic"):
        o, p = by[(hot, n, "optimistic")], by[(hot, n, "pessimistic")]
        lines.append(
            f"| {hot} | {n} | {o['per_s']:.0f} | {o['contended_per_op']:.2f} | {p['per_s']:.0f} "
            f"| {p['contended_per_op']:.2f} | {p['per_s'] / o['per_s']:.2f} |"
        )
    load = out["machine"]["load_before"], out["machine"]["load_after"]
    lines += [
        "",
        f"Load average (1, 5, 15 min) before {load[0]}, after {load[1]}; {out['machine']['cpus']} CPUs; {out['when']}.",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per lock per round")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed calls of each lock before the rounds (s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8])
    parser.add_argument("--hot-rows", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    parser.add_argument("--operations", type=int, default=100, help="increments per client per batch")
    parser.add_argument("--repeats", type=int, default=3, help="batches per point (the median counts)")
    args = parser.parse_args()
    log = common.logger("locks")
    common.setup_django()
    from django.conf import settings

    from apps.runs.nodes import SharedNodes

    nodes = SharedNodes(
        RUN_ID, mariadb_url=settings.LAB_MARIADB_URL, redis_url=settings.LAB_REDIS_URL, zk_hosts=settings.LAB_ZK_HOSTS
    )
    load_before = common.load()
    try:
        locks = uncontended(nodes, args, log)
        points, check = contended(nodes, args, log)
    finally:
        nodes.cleanup()
    out = {
        "benchmark": "locks",
        "when": common.stamp(),
        "machine": common.machine(cpus=os.cpu_count(), load_before=load_before, load_after=common.load()),
        "settings": {k: v for k, v in vars(args).items()},
        "uncontended": locks,
        "contended": points,
        "check": check,
    }
    common.publish("locks", out, table)
    if check["lost"]:
        log(f"{check['lost']} increments lost: a lock let two clients through")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
