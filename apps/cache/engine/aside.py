"""Cache-aside as people first write it, under a seeded workload: clients on threads of their own,
each step every client makes its operations at once, and the main thread waits for them at the step
boundary. Plain Python."""

from __future__ import annotations

import random
from typing import Any

from . import events
from .clients import Client
from .store import Store
from .workload import Zipf, mix, on_threads


def run_round(ctx: Any, clients: list[Client], zipfs: dict, rngs: dict) -> None:
    """One round: every client makes its `ops` operations at once, on a thread of its own; the
    first error one of them met is raised here."""

    def work(client: Client) -> None:
        for _ in range(ctx.params["ops"]):
            key = zipfs[client.name].draw()
            if mix(rngs[client.name], ctx.params["read_ratio"]) == "read":
                client.read(key)
            else:
                client.write(key)

    on_threads(clients, work)


def run_clients(ctx: Any, store: Store, clients: list[Client], *, keys: list[str]) -> dict:
    """`steps` rounds of `ops` operations per client, concurrently; hit ratio and DB reads charted."""
    p = ctx.params
    rngs = {c.name: random.Random(f"{ctx.seed}:{c.name}") for c in clients}
    zipfs = {c.name: Zipf(keys, p["zipf"], rngs[c.name]) for c in clients}
    last = {"reads": 0, "db": 0, "t": ctx.clock}
    for _ in range(p["steps"]):
        run_round(ctx, clients, zipfs, rngs)
        reads = sum(c.hits + c.misses for c in clients)
        hits = sum(c.hits for c in clients)
        db = sum(c.db_reads for c in clients)
        if reads:
            events.metric(ctx, "hit_ratio", round(hits / reads, 3))
        elapsed = max((ctx.clock - last["t"]) / 1000.0, 1e-3)
        events.metric(ctx, "db_reads_per_s", round((db - last["db"]) / elapsed, 1))
        last = {"reads": reads, "db": db, "t": ctx.clock}
        ctx.step()
    settle(ctx)
    # The hot keys read once more: the cache the run ends with is filled after the last write.
    for key in keys[: min(len(keys), 10)]:
        clients[0].read(key)
    hits = sum(c.hits for c in clients)
    misses = sum(c.misses for c in clients)
    return {
        "hits": hits,
        "misses": misses,
        "db_reads": sum(c.db_reads for c in clients),
        "redis_node": store.redis_node,
    }


def settle(ctx: Any) -> None:
    """Lets one TTL run out after the last operation: what cache-aside promises is that an entry is
    at most one TTL out of date, so by then every entry a race left stale is gone."""
    ctx.emit(
        "phase",
        actor="clients",
        label=f"the clients stop; wait one TTL ({ctx.params['ttl_ms']} ms)",
        data={"phase": "settle"},
    )
    ctx.cancelled.wait(ctx.params["ttl_ms"] / 1000.0 + 0.05)


def cache_aside(ctx: Any) -> dict:
    p = ctx.params
    store = Store(ctx.nodes)
    keys = store.create(p["keys"], random.Random(ctx.seed))
    ctx.emit("phase", actor="clients", label="clients read and write", data={"phase": "workload"})
    clients = [Client(ctx, f"c{i}", store, ttl_ms=p["ttl_ms"]) for i in range(1, p["clients"] + 1)]
    try:
        return run_clients(ctx, store, clients, keys=keys)
    finally:
        for c in clients:
            c.close()
