"""The engine's side of the CDC applier (applier.py): it snapshots A into B, starts the applier as a
process of its own, relays what the process reports as the run's events, sees it die (by its own
SIGKILL on the crash schedule, or the "kill the applier" button) and starts it again. The workload
writes to A step by step; between steps the engine waits for the applier to have applied
everything A's binlog holds. Plain Python."""

from __future__ import annotations

import json
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from apps.runs.engine_api import RunStopped

from . import events
from .applier import OFFSETS_DDL, WRITE_OFFSET
from .binlog import Position, create_account, current_position, snapshot
from .driver import late_steps, tables_equal
from .tables import UPSERT_B, Pair, create_tables, execute, table
from .workload import Workload

ROOT = Path(__file__).resolve().parents[3]  # the project: `python -m apps.sync.engine.applier` runs from it
READER_USER = "cdc"
STEP_WAIT_S = 20.0  # how long a step waits for the applier to catch up (restarts included)
CATCH_UP_S = 40.0
RESTART_PAUSE_S = 0.5  # before starting again an applier that failed (not one that was killed)


def position_of(data: dict | None) -> Position | None:
    return Position.from_dict(data) if data else None


def key_of(data: dict) -> tuple[str, int]:
    """A source transaction's identity: where it begins in the binlog."""
    return (data["file"], int(data["pos"]))


class ApplierProcess:
    """The applier's process, supervised as systemd or Kubernetes would: started, watched, started
    again whenever it dies. `crashes[i]` is the transaction (counted from its start) at which the
    process kills itself the i-th time; once they are used up it runs on."""

    def __init__(self, ctx: Any, config: dict, crashes: list[int], actor: str = "applier"):
        self.ctx, self.config, self.crashes, self.actor = ctx, config, list(crashes), actor
        self.changed = threading.Condition()
        self.proc: subprocess.Popen | None = None
        self.life = 0
        self.self_kills = 0  # deaths at the crash point, by its own SIGKILL
        self.outside_kills = 0  # deaths by the fault button
        self.failures: list[str] = []  # exits on an error (a server unreachable, say)
        self.done: Position | None = None  # everything up to here is through the applier
        self.done_at: float | None = None  # run clock when `done` last moved
        self.committed: Position | None = None
        self.applied: dict[tuple, int] = {}  # source transaction's start -> times B got it
        self.taken: dict[tuple, int] = {}  # source transaction's start -> its changes
        self.replayed_changes = 0
        self.replayed_transactions = 0
        self._killing: int | None = None  # pid the fault button is killing
        self._crash_point: str | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    # Life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        proc = self._spawn()
        self._thread = threading.Thread(
            target=self._supervise, args=(proc,), name=f"run{self.ctx.run_id}-applier", daemon=True
        )
        self._thread.start()

    def _spawn(self) -> subprocess.Popen | None:
        """A new life of the applier, or None once the run is stopping it."""
        with self.changed:  # stop() sees either this process or none that will ever start
            if self._stopping:
                return None
            self.life += 1
            crash_after = self.crashes[self.self_kills] if self.self_kills < len(self.crashes) else None
            config = {**self.config, "life": self.life, "crash_after": crash_after, "name": self.actor}
            self._stderr = tempfile.TemporaryFile()
            proc = subprocess.Popen(
                [sys.executable, "-m", "apps.sync.engine.applier"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                text=True,
                bufsize=1,
            )
            # The configuration is the first line; stdin then stays open: closing it stops the applier.
            proc.stdin.write(json.dumps(config) + "\n")
            proc.stdin.flush()
            self.proc = proc
        events.applier(self.ctx, "started", proc.pid, self.life, actor=self.actor, crash_after=crash_after)
        return proc

    def _supervise(self, proc: subprocess.Popen | None) -> None:
        while proc is not None:
            try:
                for line in proc.stdout:
                    self._handle(line)
                self._died(proc, proc.wait())
            except RunStopped:  # the run hit a limit while the applier reported: stop relaying
                self.stop()
                return
            proc = self._spawn()

    def _died(self, proc: subprocess.Popen, code: int) -> None:
        with self.changed:
            self.proc = None
            stopping = self._stopping
            self.changed.notify_all()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        self._stderr.close()
        if stopping:
            return
        if code < 0:
            name = signal.Signals(-code).name
            if self._killing == proc.pid:
                self.outside_kills += 1
                cause = f"{name} from outside (the fault button)"
            elif self._crash_point is not None:
                self.self_kills += 1
                cause = f"{name} by itself, {self._crash_point}"
            else:
                cause = f"{name} from outside"
            self._killing = self._crash_point = None
            events.applier(self.ctx, "killed", proc.pid, self.life, actor=self.actor, signal=name, cause=cause)
            return
        reason = self.failures[-1] if self.failures else " / ".join(tail) or f"exit status {code}"
        events.applier(self.ctx, "exited", proc.pid, self.life, actor=self.actor, code=code, error=reason)
        time.sleep(RESTART_PAUSE_S)

    def kill(self, target: str, **options: Any) -> dict:
        """The fault button: SIGKILL the running applier at once, wherever it is."""
        if target != self.actor:
            raise ValueError(f"only the {self.actor} can be killed in this scenario")
        with self.changed:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                raise ValueError(f"the {self.actor} is not running (it is being started again)")
            self._killing = proc.pid
            proc.send_signal(signal.SIGKILL)
        return {"pid": proc.pid, "life": self.life, "signal": "SIGKILL"}

    def stop(self) -> None:
        with self.changed:
            self._stopping = True
            proc = self.proc
        if proc is not None:
            proc.stdin.close()  # the applier exits when its stdin closes
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)

    # What the process reports -----------------------------------------------------------------------
    def _handle(self, line: str) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            self.ctx.emit("log", actor=self.actor, label=line.strip()[:200])
            return
        if "event" in message:
            self.ctx.emit(**message["event"])
            return
        what = message.get("report")
        if what == "taken":
            self.taken[key_of(message["start"])] = message["changes"]
        elif what == "applied":
            key = key_of(message["start"])
            times = self.applied.get(key, 0) + 1
            self.applied[key] = times
            if times > 1:
                self.replayed_transactions += 1
                self.replayed_changes += message["changes"]
                start = Position.from_dict(message["start"])
                data = {"type": "replay", "start": message["start"], "changes": message["changes"], "times": times}
                label = f"replayed {message['changes']} change(s) from {start}: B had them already"
                self.ctx.emit("state", actor=self.actor, label=label, data=data)
        elif what == "committed":
            with self.changed:
                self.committed = position_of(message["offset"])
        elif what == "done":
            end = position_of(message["end"])
            with self.changed:
                if self.done is None or end > self.done:
                    self.done, self.done_at = end, self.ctx.clock
                self.changed.notify_all()
        elif what == "crash":
            self._crash_point = message["point"]
        elif what == "error":
            self.failures.append(message["error"])
            self.ctx.emit("log", actor=self.actor, label=f"applier error: {message['error']}")

    def wait_for(self, target: Position, timeout: float) -> bool:
        """Waits until everything up to `target` is through the applier (False on timeout)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.done is None or self.done < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.ctx.cancelled.is_set():
                    return False
                self.changed.wait(min(left, 0.2))
        return True

    def gaps(self) -> int:
        """Source transactions the reader took and B never got, though the committed offset is past
        them: no later life will stream them again."""
        if self.committed is None:
            return 0
        offset = (self.committed.file, self.committed.pos)
        return sum(1 for start in self.taken if start not in self.applied and start < offset)

    def result(self) -> dict:
        return {
            "mode": self.config["mode"],
            "lives": self.life,
            "kills": self.self_kills + self.outside_kills,
            "self_kills": self.self_kills,
            "outside_kills": self.outside_kills,
            "failures": len(self.failures),
            "transactions_taken": len(self.taken),
            "transactions_applied": len(self.applied),
            "replayed_transactions": self.replayed_transactions,
            "replayed_changes": self.replayed_changes,
            "gaps": self.gaps(),
            "committed_offset": self.committed.as_dict() if self.committed else None,
        }


def crash_schedule(seed: int, kills: int) -> list[int]:
    """At which transaction of each life the applier kills itself: seeded, a few apart."""
    rng = random.Random(f"applier-crashes-{seed}")
    return [rng.randint(2, 6) for _ in range(kills)]


def copy_snapshot(ctx: Any, pair: Pair, conns: dict) -> Position:
    """A's rows into B as of one consistent snapshot, and its binlog position as B's first offset."""

    def run(command, call):
        return ctx.cmd(pair.source_node, command, call, actor="snapshot")

    at, rows = snapshot(conns["A"], table("A"), run=run)
    with conns["B"].cursor() as cur:
        execute(ctx, cur, pair.target_node, OFFSETS_DDL, actor="snapshot", label="CREATE TABLE offsets")
        if rows:
            args = [(r["id"], r["bkey"], r["value"], r["version"], r["updated_at"]) for r in rows]
            execute(
                ctx,
                cur,
                pair.target_node,
                UPSERT_B,
                args,
                actor="snapshot",
                label=f"UPSERT {len(rows)} rows INTO b",
                many=True,
            )
        execute(
            ctx,
            cur,
            pair.target_node,
            WRITE_OFFSET,
            ("applier", at.file, at.pos),
            actor="snapshot",
            label=f"UPDATE offset = {at}",
        )
    # One event for the whole copy, as A's load has: a row event each would swamp a large table's run.
    ids = [rows[0]["id"], rows[-1]["id"]] if rows else []
    data = {"type": "load", "table": "B", "rows": len(rows), "ids": ids, "by": "snapshot", "position": at.as_dict()}
    ctx.emit("state", actor="B", label=f"B loaded with {len(rows)} rows from the snapshot at {at}", data=data)
    events.offsets(ctx, committed=at.as_dict(), actor="applier")
    return at


class HotKeys:
    """A few keys the workload updates in a burst each step, alternating: the changes an applier
    pool without key affinity can reorder."""

    def __init__(self, workload: Workload, rng: random.Random, keys: int = 2):
        self.workload, self.rng, self.keys = workload, rng, keys
        self.ids: list[int] = []

    def free(self) -> list[int]:
        """A's live rows but those the open long transaction holds: a write to one of them would
        wait on its row lock until that transaction commits, steps later."""
        late = self.workload._late
        held = {w["id"] for w in late["writes"]} if late else set()
        return sorted(set(self.workload.versions) - held)

    def burst(self, n: int) -> None:
        free = self.free()
        self.ids = [i for i in self.ids if i in free]
        spare = sorted(set(free) - set(self.ids))
        while len(self.ids) < self.keys and spare:
            self.ids.append(spare.pop(self.rng.randrange(len(spare))))
        for i in range(n if self.ids else 0):
            self.workload.update(self.ids[i % len(self.ids)])


def run_applier(ctx: Any, *, mode: str, workers: int = 1, keyed: bool = False) -> dict:
    """A CDC scenario with the applier process: load A, snapshot it into B, start the applier, then
    per step a burst of writes and a wait for the applier to apply them; then a last catch-up."""
    params = ctx.params
    pair = Pair(ctx.nodes)
    create_tables(pair)
    rng = random.Random(ctx.seed)
    workload = Workload(ctx, pair, rng)
    hot = HotKeys(workload, random.Random(f"hot-{ctx.seed}")) if params.get("hot") else None
    conns = {"A": pair.source(), "B": pair.target()}
    applier = None
    try:
        ctx.emit("phase", actor="workload", label="load A", data={"phase": "load"})
        workload.load(params["rows"])
        ctx.emit("phase", actor="snapshot", label="snapshot A into B", data={"phase": "start"})
        start = copy_snapshot(ctx, pair, conns)
        password = secrets.token_hex(12)
        ctx.cmd(
            pair.source_node,
            f"CREATE USER {READER_USER} (REPLICATION SLAVE, BINLOG MONITOR)",
            lambda: create_account(conns["A"], READER_USER, password),
            actor="snapshot",
        )
        skew = params.get("skew_ms", 0)
        config = {
            "source": {**pair.params("A"), "user": READER_USER, "password": password},
            "target": pair.params("B"),
            "schema": pair.database("A"),
            "target_db": pair.database("B"),
            "start": start.as_dict(),
            "mode": mode,
            "workers": workers,
            "keyed": keyed,
            "delays_ms": [i * skew for i in range(workers)],
            "source_node": pair.source_node,
            "target_node": pair.target_node,
        }
        applier = ApplierProcess(ctx, config, crash_schedule(ctx.seed, params.get("kills", 0)))
        ctx.on_fault("kill", applier.kill)
        applier.start()
        ctx.step()

        def caught_up(timeout: float) -> float | None:
            """Waits for the applier to reach the end of A's binlog; the lag of the last write, in ms."""
            end = ctx.cmd(
                pair.source_node,
                "SHOW MASTER STATUS",
                lambda: current_position(conns["A"]),
                actor="applier",
                summary=str,
            )
            if not applier.wait_for(end, timeout):
                return None
            return max(0.0, (applier.done_at or ctx.clock) - (workload.last_write_ms or 0.0))

        steps = params["steps"]
        begin, commit = late_steps(steps)
        ctx.emit("phase", actor="workload", label="A keeps changing", data={"phase": "workload"})
        for i in range(steps):
            if i == begin and workload.versions:
                workload.begin_late()
            if i == commit:
                workload.commit_late()
            if hot is not None:
                hot.burst(params["hot"])
            workload.burst(params["rate"])
            lag = caught_up(STEP_WAIT_S)
            if lag is not None:
                events.lag(ctx, lag, actor=applier.actor)
            ctx.step()
        workload.commit_late()
        ctx.emit("phase", actor=applier.actor, label="the workload stops; catch up", data={"phase": "catch-up"})
        lag = caught_up(CATCH_UP_S)
        lag_ms = round(lag, 1) if lag is not None and tables_equal(pair) else None
        caught = lag_ms is not None
        label = f"B matched A {lag_ms:.0f} ms after the last write" if caught else "B never matched A"
        data = {"name": "convergence_lag_ms", "value": lag_ms, "caught_up": caught}
        ctx.emit("metric", actor=applier.actor, label=label, data=data)
        account = applier.result()
        label = (
            f"{account['kills']} kill(s): {account['replayed_transactions']} transaction(s) replayed, "
            f"{account['gaps']} passed over and never applied"
        )
        ctx.emit("log", actor=applier.actor, label=label, data={"type": "applier-account", **account})
        return {"tables": True, "writes": workload.writes, "convergence_lag_ms": lag_ms, **account}
    finally:
        if applier is not None:
            applier.stop()
        workload.close()
        for conn in conns.values():
            conn.close()
