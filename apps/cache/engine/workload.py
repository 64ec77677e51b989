"""Seeded Zipf-distributed keys and a read/write mix. Plain Python."""

from __future__ import annotations

import bisect
import itertools
import random
import threading
from collections.abc import Callable
from typing import Any


class Zipf:
    """Key ranks drawn with probability ∝ 1 / rank**s (s = 0 is uniform), by a seeded generator."""

    def __init__(self, keys: list[str], s: float, rng: random.Random):
        self.keys, self.rng = keys, rng
        weights = [1.0 / (rank**s) for rank in range(1, len(keys) + 1)]
        self.cumulative = list(itertools.accumulate(weights))

    def draw(self) -> str:
        x = self.rng.random() * self.cumulative[-1]
        return self.keys[min(bisect.bisect_left(self.cumulative, x), len(self.keys) - 1)]


def mix(rng: random.Random, read_ratio: float) -> str:
    return "read" if rng.random() < read_ratio else "write"


def on_threads(clients: list, work: Callable[[Any], None]) -> None:
    """Runs `work(client)` for every client at once, each on a thread of its own named for the
    client, and waits for them all; the first error one of them met is raised here."""
    errors: list[BaseException] = []

    def guarded(client: Any) -> None:
        try:
            work(client)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(c,), name=c.name) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
