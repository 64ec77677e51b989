"""Incremental polling on an `updated_at` watermark, as many ETL jobs do it: every pass reads the
rows of A changed since the newest timestamp it has seen, upserts them into B, and moves the
watermark to the newest `updated_at` it read. Plain Python.

What it cannot see is the lesson: a delete leaves no row to read, and a transaction that commits
late with the time of its start as `updated_at` lands behind the watermark, where no later poll
looks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import events
from .tables import COLUMNS, UPSERT_B, execute, table

A, B = table("A"), table("B")
EPOCH = datetime(1970, 1, 1)
CHANGED_SINCE = f"SELECT {', '.join(COLUMNS)} FROM {A} WHERE updated_at > %s ORDER BY updated_at, id"


class WatermarkPoller:
    actor = "poller"

    def __init__(self, ctx: Any, pair: Any, workload: Any = None):
        self.ctx, self.pair = ctx, pair
        # Autocommit: every poll is a statement of its own, so it reads what is committed now.
        self.source, self.target = pair.source(), pair.target()
        self.watermark = EPOCH
        self.polls = 0
        self.copied = 0

    def start(self) -> None:
        self.step()  # the first poll, from the epoch, copies the whole table

    def step(self) -> None:
        self.polls += 1
        since = self.watermark
        with self.source.cursor() as cur:
            label = f"SELECT * FROM a WHERE updated_at > '{since}' ORDER BY updated_at, id"
            execute(self.ctx, cur, self.pair.source_node, CHANGED_SINCE, (since,), actor=self.actor, label=label)
            rows = list(cur.fetchall())
        if rows:
            with self.target.cursor() as cur:
                label = f"UPSERT {len(rows)} rows INTO b"
                execute(self.ctx, cur, self.pair.target_node, UPSERT_B, rows, actor=self.actor, label=label, many=True)
            for row in rows:
                events.row(self.ctx, "B", "upsert", row[0], bkey=row[1], version=row[3], value=row[2], by=self.actor)
            self.copied += len(rows)
            # Ordered by updated_at: the last row read holds the newest timestamp.
            self.watermark = rows[-1][4]
        events.watermark(self.ctx, str(self.watermark), rows=len(rows), since=str(since), actor=self.actor)

    def result(self) -> dict:
        return {"polls": self.polls, "copied": self.copied, "watermark": str(self.watermark)}
