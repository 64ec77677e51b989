"""The built-in input: real text every Debian machine has, read in a fixed order so a seed and a
size limit always give the same corpus, and input splits cut from it.

- `licenses`: /usr/share/common-licenses/* then /usr/share/doc/*/copyright;
- `python-stdlib`: the Python standard library's sources (one document per file);
- `access-log`: an access log generated from the seed, whose URLs are the standard library's
  module paths (generated, not a real server's log).
"""

import math
import random
import sysconfig
from datetime import UTC, datetime, timedelta
from pathlib import Path

LICENSES = Path("/usr/share/common-licenses")
DOCS = Path("/usr/share/doc")
INPUTS = ("licenses", "python-stdlib", "access-log", "upload")


def _licence_files():
    seen = set()
    if LICENSES.is_dir():
        for path in sorted(LICENSES.iterdir()):
            yield f"common-licenses/{path.name}", path
    if DOCS.is_dir():
        for path in sorted(DOCS.glob("*/copyright")):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            yield f"doc/{path.parent.name}/copyright", path


def stdlib_root():
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files():
    root = stdlib_root()
    skip = ("site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib", "lib2to3")
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in skip for part in rel.parts[:-1]):
            continue
        yield str(rel), path


def _read(files, size_limit):
    """(name, text) documents in order until size_limit characters; the last one cut at a line end."""
    docs, total = [], 0
    for name, path in files:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if not text.strip():
            continue
        room = size_limit - total
        if len(text) > room:
            cut = text.rfind("\n", 0, room)
            text = text[: cut + 1] if cut >= 0 else ""
        if text:
            docs.append((name, text))
            total += len(text)
        if total >= size_limit or len(text) == 0:
            break
    return docs


def stdlib_urls():
    return ["/python/" + name for name, _ in _stdlib_files()]


def access_log(seed, size_limit):
    """A deterministic access log: URL popularity follows a Zipf law over the stdlib module paths
    (shuffled by the seed), so the top URLs are clear but not trivial."""
    rng = random.Random(f"access-log-{seed}")
    urls = stdlib_urls() or ["/index.html"]
    rng.shuffle(urls)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(urls))]
    cumulative, acc = [], 0.0
    for w in weights:
        acc += w
        cumulative.append(acc)
    agents = ("Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "python-requests/2.31", "Wget/1.21.3")
    statuses = (200,) * 17 + (304, 404, 500)
    when = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    lines, total = [], 0
    while True:
        url = rng.choices(urls, cum_weights=cumulative)[0]
        when += timedelta(milliseconds=rng.randrange(1, 900))
        line = (
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)} - - "
            f'[{when:%d/%b/%Y:%H:%M:%S} +0000] "GET {url} HTTP/1.1" {rng.choice(statuses)} '
            f'{rng.randrange(200, 90_000)} "-" "{rng.choice(agents)}"\n'
        )
        if total + len(line) > size_limit:
            break
        lines.append(line)
        total += len(line)
    return [("access.log", "".join(lines))]


def documents(source, *, size_limit, seed=0, upload=None):
    """The input documents [(name, text)]. `upload` is (name, text) when source is "upload"."""
    if source == "licenses":
        docs = _read(_licence_files(), size_limit)
    elif source == "python-stdlib":
        docs = _read(_stdlib_files(), size_limit)
    elif source == "access-log":
        docs = access_log(seed, size_limit)
    elif source == "upload":
        name, text = upload
        docs = [(name or "upload", text)]
    else:
        raise ValueError(f"unknown input {source!r}")
    if not docs or not any(text.strip() for _, text in docs):
        raise ValueError(f"the input {source!r} is empty on this machine")
    return docs


def split(docs, maps):
    """Cuts the documents into at most `maps` splits of about equal size, at line ends. Each split is
    a list of chunks [document name, number of lines before the chunk, text, number of lines (records)
    in it]; a document may span splits. Fewer splits come back when there are fewer lines than maps."""
    total = sum(len(text) for _, text in docs)
    target = max(1, math.ceil(total / maps))
    splits, current, size = [], [], 0
    for name, text in docs:
        pos, line = 0, 0
        while pos < len(text):
            if size >= target and len(splits) < maps - 1:
                splits.append(current)
                current, size = [], 0
            end = pos + (target - size)
            if end >= len(text) or len(splits) == maps - 1:
                end = len(text)
            else:
                nl = text.find("\n", end - 1)
                end = len(text) if nl < 0 else nl + 1
            chunk = text[pos:end]
            newlines = chunk.count("\n")
            current.append([name, line, chunk, newlines + (0 if chunk.endswith("\n") else 1)])
            line += newlines
            size += len(chunk)
            pos = end
    if current:
        splits.append(current)
    return splits
