"""The engine API: all that a lab's engine may import from the platform. Plain Python, no Django.

An engine is a function `run(ctx: Context)`. It talks to real servers through the connections
`ctx.nodes` gives it, records what it does with `ctx.emit(...)` and `ctx.cmd(...)`, waits at
`ctx.step()`, and raises (or lets through) `RunStopped` when the run must end early. Its checkers
return a `Check`. Faults on nodes that are not up raise `NodeDown`.

Every real SQL, Redis or ZooKeeper command a lab sends goes through `cmd(...)` (or `ctx.cmd`), so
that every lab records it as the same `cmd` event:

    {"kind": "cmd", "actor": "c1", "to": "mariadb", "label": <command>,
     "data": {"node": "mariadb", "command": <command>, "ok": true | false,
              "result": <summary or null>, "ms": <duration>, "error": <message or null>}}
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# emit(kind, actor=..., to=..., label=..., data=...) -> the recorded event (a dict), or None
Emit = Callable[..., Any]


class RunStopped(Exception):
    """Raised at a step boundary when the run must end early: stopped by a user, or over a limit."""

    def __init__(self, reason: str, status: str = "cancelled"):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NodeDown(Exception):
    """A node is not up for what was asked of it (a fault on a node already down, say)."""

    def __init__(self, node: str, state: str, message: str | None = None):
        super().__init__(message or f"{node} is {state}")
        self.node = node
        self.state = state


@dataclass(frozen=True)
class Check:
    """An invariant's result: held True, False, or None (unknown), with the evidence for it."""

    held: bool | None
    evidence: Any = None


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    """fn(*args, **kwargs) and how long it took, in milliseconds."""
    began = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round((time.perf_counter() - began) * 1000.0, 3)


def describe_error(exc: BaseException) -> str:
    """A server's error as people read it: `1213: Deadlock found…` for MariaDB's coded errors,
    `ConnectionError: …` for the rest."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[0]}: {args[1]}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def summarize(result: Any, limit: int = 200) -> Any:
    """A command's result, small enough for the command log: JSON scalars as they are, bytes as
    text, lists item by item (at most 20), anything else as its text, long text cut."""
    if result is None or isinstance(result, (bool, int, float)):
        return result
    if isinstance(result, bytes):
        result = result.decode(errors="replace")
    if isinstance(result, str):
        return result if len(result) <= limit else result[: limit - 1] + "…"
    if isinstance(result, (list, tuple)):
        items = [summarize(r, limit) for r in result[:20]]
        if len(result) > 20:
            items.append(f"… {len(result) - 20} more")
        return items
    return summarize(str(result), limit)


def cmd(
    emit: Emit | None,
    actor: str,
    node: str,
    command: str,
    call: Callable[[], T],
    *,
    summary: Callable[[T], Any] | None = None,
) -> T:
    """Runs `call()` (one real command sent to `node`) and records it as one `cmd` event, whether
    it succeeds or raises; returns its result or raises its exception. With no `emit` (recording
    off, as the benchmarks run) it only calls."""
    if emit is None:
        return call()
    began = time.perf_counter()
    try:
        result = call()
    except BaseException as exc:
        if isinstance(exc, RunStopped):
            raise
        ms = round((time.perf_counter() - began) * 1000.0, 3)
        data = {"node": node, "command": command, "ok": False, "result": None, "ms": ms, "error": describe_error(exc)}
        emit("cmd", actor=actor, to=node, label=command, data=data)
        raise
    ms = round((time.perf_counter() - began) * 1000.0, 3)
    shown = summary(result) if summary is not None else summarize(result)
    data = {"node": node, "command": command, "ok": True, "result": shown, "ms": ms, "error": None}
    emit("cmd", actor=actor, to=node, label=command, data=data)
    return result


class History(Protocol):
    """Jepsen-style operation history (apps/runs/history.py)."""

    def invoke(self, process: str, f: str, value: Any = None) -> Any: ...
    def ok(self, op: Any, value: Any = None) -> Any: ...
    def fail(self, op: Any, value: Any = None, error: str | None = None) -> Any: ...
    def info(self, op: Any, error: str | None = None) -> Any: ...


class Context(Protocol):
    """What every engine gets (DESIGN.md, "The run context"); apps/runs/context.py implements it."""

    run_id: int
    params: dict[str, Any]
    seed: int
    rng: random.Random
    nodes: Any  # the run's nodes: SharedNodes or DedicatedNodes, with real client connections
    history: History
    cancelled: threading.Event

    @property
    def clock(self) -> float: ...  # ms since the run started, paused time included
    @property
    def active_clock(self) -> float: ...  # s since the start, time held at step boundaries excluded

    def emit(
        self, kind: str, actor: str = "", to: str = "", label: str = "", data: Any = None, **fields: Any
    ) -> Any: ...
    def cmd(
        self,
        node: str,
        command: str,
        call: Callable[[], T],
        *,
        actor: str = "",
        summary: Callable[[T], Any] | None = None,
    ) -> T: ...
    def step(self) -> None: ...
    def fault(self, kind: str, target: str, **options: Any) -> Any: ...
    def on_fault(self, kind: str, handler: Callable[..., Any]) -> None: ...
    def cancel(self, reason: str, status: str = "cancelled") -> None: ...


__all__ = [
    "Check",
    "Context",
    "Emit",
    "History",
    "NodeDown",
    "RunStopped",
    "cmd",
    "describe_error",
    "summarize",
    "timed",
]
