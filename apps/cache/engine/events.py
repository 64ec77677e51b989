"""The cache lab's event vocabulary: what its run-page panels draw. Every event is a `state` (or a
`metric`) whose data has a `type`:

- `entry`   a cache entry changed: {key, version (None when deleted), ttl_ms, by, op: set|delete|expire|refused}
- `row`     a row committed in the items table: {key, version, by}
- `read`    a client was served: {client, key, version, from: "cache"|"db", stale: bool|None}
- `lease`   a lease token: {key, client, token, state: "granted"|"refused"|"invalidated"|"used"}
- `node`    placement: {key, node} when a key's node is chosen or moves (sharding)
- `shard`   the nodes a placement serves over changed: {scheme, nodes, moved}
- `near`    a client's near cache: {client, key (None for all), op: invalidated|dropped|flushed|reconnected}
- `breaker` a circuit breaker in front of a cache node changed: {node, state: "closed"|"open"|"half-open", from, reason, failures}
- metrics   `hit_ratio` (0..1), `db_reads_per_s`, `read_ms` — {name, value, x: run time in s, y}
            the load scenarios add `series` (the variant: one line each) and `db_queries` (per
            round of one TTL), `read_p99_ms`, `absent_db_reads` (cumulative),
            `bloom_false_positive_rate` (series measured / target)
- metric    `stale_after_second_delete_ms` (double-delete) — {name, value, x: the delay in ms, y, key}
"""

from __future__ import annotations

from typing import Any


def entry(ctx: Any, key: str, op: str, version: int | None, *, by: str, ttl_ms: int | None = None, **extra) -> None:
    data = {"type": "entry", "key": key, "op": op, "version": version, "ttl_ms": ttl_ms, "by": by, **extra}
    shown = f" v{version}" if version is not None else ""
    ctx.emit("state", actor="cache", label=f"cache {op} {key}{shown}", data=data)


def row(ctx: Any, key: str, version: int, *, by: str) -> None:
    ctx.emit(
        "state",
        actor="db",
        label=f"items {key} v{version}",
        data={"type": "row", "key": key, "version": version, "by": by},
    )


def read(ctx: Any, client: str, key: str, version: int | None, source: str, **extra) -> None:
    data = {"type": "read", "client": client, "key": key, "version": version, "from": source, **extra}
    ctx.emit("state", actor=client, label=f"{client} read {key} v{version} from {source}", data=data)


def lease(ctx: Any, key: str, client: str, token: Any, state: str) -> None:
    data = {"type": "lease", "key": key, "client": client, "token": token, "state": state}
    ctx.emit("state", actor=client, label=f"lease {token} on {key} {state}", data=data)


def breaker(ctx: Any, node: str, state: str, *, was: str, reason: str, failures: int) -> None:
    data = {"type": "breaker", "node": node, "state": state, "from": was, "reason": reason, "failures": failures}
    ctx.emit("state", actor="breaker", to=node, label=f"breaker {was} → {state}: {reason}", data=data)


def metric(ctx: Any, name: str, value: float, *, actor: str = "clients", **extra) -> None:
    x = round(ctx.clock / 1000.0, 3)
    data = {"name": name, "value": value, "x": x, "y": value, **extra}
    ctx.emit("metric", actor=actor, label=f"{name} {value}", data=data)


def near(ctx: Any, client: str, key: str | None, op: str, **extra) -> None:
    data = {"type": "near", "client": client, "key": key, "op": op, **extra}
    ctx.emit("state", actor=client, label=f"{client} near cache {op}{f' {key}' if key else ''}", data=data)
