"""The seeded workload that keeps changing A while a syncer runs. Plain Python.

Each write is its own transaction on the source, recorded in the run's history when A acknowledges
it (the checkers hold B to every acknowledged write). Now and then a long transaction begins: it
changes a few rows and inserts one with the time of its start as `updated_at`, and commits only
several steps later, so its rows carry a timestamp older than writes committed before them — what
an `updated_at` watermark cannot see.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from apps.runs.engine_api import describe_error

from . import events
from .tables import execute, table

A = table("A")
LOAD_BATCH = 1000


def bkey_of(n: int) -> str:
    return f"k{n:07d}"


def value_of(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))


@dataclass
class Workload:
    ctx: Any
    pair: Any
    rng: random.Random
    # Weights of the three kinds of write; deletes off makes a workload some syncers can follow.
    mix: dict = field(default_factory=lambda: {"insert": 5, "update": 4, "delete": 1})
    actor: str = "workload"

    def __post_init__(self):
        self.conn = self.pair.source()
        self.versions: dict[int, int] = {}  # the live rows of A and their versions
        self.numbered = 0  # business keys handed out
        self.writes = 0
        self.last_write_ms: float | None = None  # run clock of the last acknowledged write
        self._late: dict | None = None

    # Set-up ------------------------------------------------------------------------------------
    def load(self, rows: int) -> None:
        """A's first `rows` rows, in batches, as one recorded operation (the seed of the table)."""
        op = self.ctx.history.invoke(self.actor, "load", {"rows": rows})
        first = None
        with self.conn.cursor() as cur:
            for start in range(0, rows, LOAD_BATCH):
                batch = [
                    (bkey_of(self.numbered + i + 1), value_of(self.rng)) for i in range(min(LOAD_BATCH, rows - start))
                ]
                statement = f"INSERT INTO {A} (bkey, value, version, updated_at) VALUES (%s, %s, 1, NOW(6))"
                execute(
                    self.ctx,
                    cur,
                    self.pair.source_node,
                    statement,
                    batch,
                    actor=self.actor,
                    label=f"INSERT {len(batch)} rows INTO a",
                    many=True,
                )
                first = first if first is not None else cur.lastrowid
                self.numbered += len(batch)
            cur.execute(f"SELECT id FROM {A} ORDER BY id")
            ids = [i for (i,) in cur.fetchall()]
        self.versions = dict.fromkeys(ids, 1)
        self.ctx.history.ok(op, {"rows": len(ids), "first": ids[0] if ids else None, "last": ids[-1] if ids else None})
        self.ctx.emit(
            "state",
            actor="A",
            label=f"A loaded with {len(ids)} rows",
            data={"type": "load", "table": "A", "rows": len(ids), "ids": [ids[0], ids[-1]] if ids else []},
        )

    # Writes ------------------------------------------------------------------------------------
    def burst(self, n: int) -> None:
        for _ in range(n):
            self.write()

    def write(self, kind: str | None = None) -> dict | None:
        """One write to A, chosen by the seed (or `kind`); None when there was nothing to change."""
        if kind is None:
            kinds = [k for k, w in self.mix.items() if w > 0 and (k == "insert" or self.versions)]
            kind = self.rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0]
        if kind == "insert":
            return self.insert()
        # The rows the open long transaction changed stay locked until it commits: a write to one
        # would wait for a COMMIT this same thread sends only later (and time out).
        held = {w["id"] for w in self._late["writes"]} if self._late else set()
        free = sorted(set(self.versions) - held)
        if not free:
            return None
        id = self.rng.choice(free)
        return self.update(id) if kind == "update" else self.delete(id)

    def _apply(self, f: str, value: dict, command: str, statement: str, args: tuple) -> dict | None:
        op = self.ctx.history.invoke(self.actor, f, value)
        try:
            with self.conn.cursor() as cur:
                self.ctx.cmd(self.pair.source_node, command, lambda: cur.execute(statement, args), actor=self.actor)
                if f == "insert":
                    value = {**value, "id": cur.lastrowid}
        except Exception as exc:  # the source paused, killed or cut off: the outcome is unknown
            self.ctx.history.info(op, describe_error(exc))
            raise
        self.ctx.history.ok(op, value)
        self.writes += 1
        self.last_write_ms = self.ctx.clock
        return value

    def insert(self) -> dict:
        self.numbered += 1
        bkey, value = bkey_of(self.numbered), value_of(self.rng)
        statement = f"INSERT INTO {A} (bkey, value, version, updated_at) VALUES (%s, %s, 1, NOW(6))"
        done = self._apply(
            "insert", {"bkey": bkey, "version": 1}, f"INSERT INTO a ({bkey!r})", statement, (bkey, value)
        )
        self.versions[done["id"]] = 1
        events.row(self.ctx, "A", "insert", done["id"], bkey=bkey, version=1, value=value)
        return done

    def update(self, id: int) -> dict:
        version, value = self.versions[id] + 1, value_of(self.rng)
        statement = f"UPDATE {A} SET value = %s, version = %s, updated_at = NOW(6) WHERE id = %s"
        done = self._apply(
            "update", {"id": id, "version": version}, f"UPDATE a id={id} v{version}", statement, (value, version, id)
        )
        self.versions[id] = version
        events.row(self.ctx, "A", "update", id, version=version, value=value)
        return done

    def delete(self, id: int) -> dict:
        done = self._apply("delete", {"id": id}, f"DELETE FROM a id={id}", f"DELETE FROM {A} WHERE id = %s", (id,))
        del self.versions[id]
        events.row(self.ctx, "A", "delete", id)
        return done

    # The late transaction ----------------------------------------------------------------------
    def begin_late(self, rows: int = 2) -> None:
        """Opens the long transaction on a connection of its own: it updates `rows` rows and inserts
        one, all stamped with the time of its start, and holds them uncommitted."""
        conn = self.pair.source(autocommit=False)
        ids = self.rng.sample(sorted(self.versions), min(rows, len(self.versions)))
        self.numbered += 1
        bkey = bkey_of(self.numbered)
        writes = []
        with conn.cursor() as cur:
            node = self.pair.source_node
            self.ctx.cmd(node, "BEGIN", lambda: cur.execute("BEGIN"), actor="late")
            self.ctx.cmd(node, "SET @started = NOW(6)", lambda: cur.execute("SET @started = NOW(6)"), actor="late")
            for id in ids:
                version = self.versions[id] + 1
                statement = f"UPDATE {A} SET value = %s, version = %s, updated_at = @started WHERE id = %s"
                args = (value_of(self.rng), version, id)
                execute(
                    self.ctx,
                    cur,
                    node,
                    statement,
                    args,
                    actor="late",
                    label=f"UPDATE a id={id} v{version} (uncommitted)",
                )
                writes.append({"op": "update", "id": id, "version": version})
            statement = f"INSERT INTO {A} (bkey, value, version, updated_at) VALUES (%s, %s, 1, @started)"
            args = (bkey, value_of(self.rng))
            self.ctx.cmd(
                node, f"INSERT INTO a ({bkey!r}) (uncommitted)", lambda: cur.execute(statement, args), actor="late"
            )
            writes.append({"op": "insert", "id": cur.lastrowid, "bkey": bkey, "version": 1})
        op = self.ctx.history.invoke("late", "late", {"writes": writes})
        self._late = {"conn": conn, "op": op, "writes": writes}
        self.ctx.emit(
            "state",
            actor="late",
            label=f"long transaction open ({len(writes)} rows, uncommitted)",
            data={"type": "late", "state": "open", "writes": writes},
        )

    @property
    def late_open(self) -> bool:
        return self._late is not None

    def commit_late(self) -> None:
        late, self._late = self._late, None
        if late is None:
            return
        conn = late["conn"]
        try:
            self.ctx.cmd(self.pair.source_node, "COMMIT", conn.commit, actor="late")
        except Exception as exc:
            self.ctx.history.info(late["op"], describe_error(exc))
            raise
        self.ctx.history.ok(late["op"], {"writes": late["writes"]})
        for w in late["writes"]:
            self.versions[w["id"]] = w["version"]
            events.row(self.ctx, "A", w["op"], w["id"], bkey=w.get("bkey"), version=w["version"], by="late")
        self.writes += len(late["writes"])
        self.last_write_ms = self.ctx.clock
        self.ctx.emit(
            "state",
            actor="late",
            label="long transaction committed, stamped with its start",
            data={"type": "late", "state": "committed", "writes": late["writes"]},
        )
        conn.close()

    def close(self) -> None:
        if self._late is not None:
            try:
                self._late["conn"].rollback()
            except Exception:  # noqa: BLE001 - its server may be gone
                pass
            self._late = None
