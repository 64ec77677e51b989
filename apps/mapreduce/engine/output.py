"""The job's output: what the committed reduce attempts wrote to the lab Redis, and the part files
it is kept in once the job is over (the run's keys are dropped when the run ends).

A part file holds one reducer's output as `key<TAB>value` lines sorted by key, as Hadoop's text
output does: a value that is text is written as it is (a grep match is one line, so it holds no
line break), any other as JSON. Keys hold no tab or line break (words, paths, URLs, document:line).
"""

import heapq
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .worker import Keys


def committed_partitions(redis: Any, keys: Keys, reduces: int) -> list[list[list[Any]]]:
    """Each partition's [[key, value], ...] (sorted by key, as its reducer wrote them) from its
    committed attempt, found by the commit key; nothing uncommitted is read."""
    parts = []
    for r in range(reduces):
        attempt = redis.get(keys.commit(f"r{r}"))
        raw = redis.get(keys.reduce_output(r, attempt)) if attempt is not None else None
        parts.append(json.loads(raw or "[]"))
    return parts


def read_committed_output(redis: Any, keys: Keys, reduces: int) -> dict[str, Any]:
    """{key: value} of the whole job, from the committed reduce attempts."""
    return {key: value for part in committed_partitions(redis, keys, reduces) for key, value in part}


def part_name(r: int) -> str:
    return f"part-r-{r:05d}"


def output_line(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"{key}\t{text}\n"


def write_parts(folder: Path, partitions: list[list[list[Any]]]) -> int:
    """Writes one part file per partition into `folder`, all at once: they are written in a
    temporary folder beside it that is then renamed, so a reader sees all of them or none.
    Returns the number of lines written."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        for r, pairs in enumerate(partitions):
            with open(tmp / part_name(r), "w", encoding="utf-8", errors="surrogatepass") as out:
                out.writelines(output_line(key, value) for key, value in sorted(pairs, key=lambda kv: kv[0]))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sum(len(pairs) for pairs in partitions)


def read_parts(folder: Path) -> Iterator[str]:
    """The whole output as `key<TAB>value` lines sorted by key, merged from the part files (each
    sorted, their keys disjoint) without loading them."""
    files = [open(path, encoding="utf-8", errors="surrogatepass") for path in sorted(Path(folder).glob("part-r-*"))]
    try:
        yield from heapq.merge(*files, key=lambda line: line.split("\t", 1)[0])
    finally:
        for f in files:
            f.close()


def peak_running(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at once; one that ends as another starts does not count
    as overlapping it."""
    intervals = list(intervals)
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = running = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
