"""Text files users upload as MapReduce input.

Each upload is stored once per user under the data folder, named by the sha256 of its content, with
a small JSON sidecar for its name and sizes:

    <DISTLAB_UPLOAD_DIR>/mapreduce/<owner>/<sha256>.txt
    <DISTLAB_UPLOAD_DIR>/mapreduce/<owner>/<sha256>.json

<owner> is the user's id, or "cli" for files given on the command line. The token handed to users is
"<owner>-<sha256>"; it is checked against TOKEN_RE before any path is built from it.
"""

import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

from .engine.sizes import human_bytes

DEFAULT_LIMIT = 20 * 1024 * 1024
# Uploads kept per user; saving one more drops the oldest, so a student never has to clean up.
QUOTA = 20
TOKEN_RE = re.compile(r"^(?P<owner>cli|[1-9][0-9]{0,18})-(?P<digest>[0-9a-f]{64})$")
NAME_MAX = 120


def limit():
    """The largest upload accepted, in bytes."""
    from django.conf import settings

    if settings.configured:
        return int(getattr(settings, "DISTLAB_UPLOAD_LIMIT", DEFAULT_LIMIT))
    return DEFAULT_LIMIT


def root():
    from django.conf import settings

    if settings.configured:
        base = Path(settings.DISTLAB_UPLOAD_DIR)
    else:
        base = Path(os.environ.get("DISTLAB_VAR", ".var")) / "uploads"
    return base / "mapreduce"


def _owner_key(owner):
    if owner is None:
        return "cli"
    pk = owner if isinstance(owner, int) else owner.pk
    if not isinstance(pk, int) or isinstance(pk, bool) or pk <= 0:
        raise ValueError("an upload's owner must be a saved user")
    return str(pk)


def _parse(token):
    match = TOKEN_RE.match(token) if isinstance(token, str) else None
    if match is None:
        raise ValueError(f"unknown upload {str(token)[:80]!r}: not an upload token")
    return match["owner"], match["digest"]


def _paths(owner_key, digest):
    folder = root() / owner_key
    return folder / f"{digest}.txt", folder / f"{digest}.json"


def _clean_name(name):
    base = os.path.basename(str(name or "").replace("\\", "/")).strip()
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:NAME_MAX] or "upload.txt"


def check(data):
    """The text of `data`, or ValueError with a one-line message saying what is wrong with it."""
    cap = limit()
    if len(data) > cap:
        raise ValueError(f"the file is {human_bytes(len(data))}; the limit is {human_bytes(cap)}")
    if not data:
        raise ValueError("the file is empty")
    if b"\x00" in data:
        raise ValueError("the file is binary (it contains NUL bytes); upload a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text; upload a UTF-8 text file") from None
    if not text.strip():
        raise ValueError("the file is empty (only whitespace)")
    return text


def _write_atomically(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(owner, name, data: bytes):
    """Stores `data` for `owner` (a user, or None for the command line) and describes it:
    {"token", "name", "bytes", "lines"}. ValueError for an empty, binary or too large file."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError("the file must be bytes")
    data = bytes(data)
    text = check(data)
    owner_key = _owner_key(owner)
    digest = hashlib.sha256(data).hexdigest()
    content, meta = _paths(owner_key, digest)
    info = {
        "token": f"{owner_key}-{digest}",
        "name": _clean_name(name),
        "bytes": len(data),
        "lines": len(text.splitlines()),
    }
    if not content.exists():
        _write_atomically(content, data)
    _write_atomically(meta, json.dumps({**info, "saved": time.time()}).encode())
    _enforce_quota(owner_key)
    return info


def _entries(owner_key):
    folder = root() / owner_key
    if not folder.is_dir():
        return []
    entries = []
    for meta in folder.glob("*.json"):
        try:
            info = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and TOKEN_RE.match(str(info.get("token", ""))):
            entries.append(info)
    return sorted(entries, key=lambda e: e.get("saved", 0), reverse=True)


def _enforce_quota(owner_key):
    for old in _entries(owner_key)[QUOTA:]:
        delete(old["token"])


def delete(token):
    owner_key, digest = _parse(token)
    for path in _paths(owner_key, digest):
        path.unlink(missing_ok=True)


def list_for(owner):
    """The owner's uploads, newest first: [{"token", "name", "bytes", "lines", "saved"}]."""
    return _entries(_owner_key(owner))


def describe(token):
    """{"token", "name", "bytes", "lines", "saved"}; ValueError("unknown upload ...") when missing."""
    owner_key, digest = _parse(token)
    content, meta = _paths(owner_key, digest)
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        raise ValueError(
            f"unknown upload {token!r}: no such file (it may have been replaced by newer uploads)"
        ) from None
    if not content.is_file():
        raise ValueError(f"unknown upload {token!r}: no such file (it may have been replaced by newer uploads)")
    return info


def read_text(token):
    """(name, text) of an upload; ValueError("unknown upload ...") when there is none."""
    info = describe(token)
    owner_key, digest = _parse(token)
    content, _ = _paths(owner_key, digest)
    try:
        data = content.read_bytes()
    except OSError:
        raise ValueError(f"unknown upload {token!r}: the file cannot be read") from None
    return info["name"], data.decode("utf-8")


def owned_by(token, owner):
    """True when the upload exists and belongs to `owner`; owner None (the command line) may use any."""
    try:
        owner_key, digest = _parse(token)
    except ValueError:
        return False
    if not _paths(owner_key, digest)[0].is_file():
        return False
    if owner is None:
        return True
    try:
        return owner_key == _owner_key(owner)
    except ValueError:
        return False
