"""The naive loop, exactly as people first write it: read A's newest row, insert it into B, commit;
a few retries if that fails. It copies only what is newest when it looks: rows inserted between two
looks, every update and every delete are never seen. Plain Python."""

from __future__ import annotations

from typing import Any

from apps.runs.engine_api import describe_error

from . import events
from .tables import execute, table

RETRIES = 3
NEWEST = f"SELECT id, bkey, value, version, updated_at FROM {table('A')} ORDER BY id DESC LIMIT 1"
INSERT = f"INSERT INTO {table('B')} (id, bkey, value, version, updated_at) VALUES (%s, %s, %s, %s, %s)"


class NaiveLoop:
    actor = "naive"

    def __init__(self, ctx: Any, pair: Any, workload: Any):
        self.ctx, self.pair = ctx, pair
        self.source, self.target = pair.source(), pair.target(autocommit=False)
        self.last_id = None
        self.copied = 0
        self.failures = 0

    def start(self) -> None:
        self.step()

    def step(self) -> None:
        for attempt in range(1, RETRIES + 1):
            try:
                self._copy_newest()
                return
            except Exception as exc:  # the target or the source failed; try again, a few times
                self.failures += 1
                try:
                    self.target.rollback()
                except Exception:  # noqa: BLE001 - the connection may be gone with the error
                    pass
                if attempt == RETRIES:
                    raise
                events.retry(self.ctx, self.actor, "copy the newest row", attempt, 0.0, describe_error(exc))

    def _copy_newest(self) -> None:
        with self.source.cursor() as cur:
            execute(self.ctx, cur, self.pair.source_node, NEWEST, actor=self.actor)
            row = cur.fetchone()
        if row is None or row[0] == self.last_id:
            return
        with self.target.cursor() as cur:
            execute(
                self.ctx, cur, self.pair.target_node, INSERT, row, actor=self.actor, label=f"INSERT INTO b id={row[0]}"
            )
        self.ctx.cmd(self.pair.target_node, "COMMIT", self.target.commit, actor=self.actor)
        self.last_id = row[0]
        self.copied += 1
        events.row(self.ctx, "B", "insert", row[0], bkey=row[1], version=row[3], value=row[2], by=self.actor)

    def result(self) -> dict:
        return {"copied": self.copied, "failures": self.failures}
