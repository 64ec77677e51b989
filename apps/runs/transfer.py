"""Export and import of a run as JSON lines: a header (what the run was and how it ended), then
every event in seq order, each exactly as the API and the websocket send it (schema v1).

An imported run belongs to the importer, is finished from the start (so it never executes, takes
no controls and counts in no quota), and replays, scrubs and compares like any other run.
"""

import json
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Event, Run
from .recorder import KINDS
from .registry import LABS

FORMAT = "distlab-run"
SCHEMA_VERSION = 1
PAGE = 2000
# Longest strings an event field may carry, as the Event table stores them.
LIMITS = {"actor": 80, "to": 80, "label": 500}
EVENT_FIELDS = {"v", "run", "seq", "t", "kind", "actor", "to", "label", "data"}


class ImportRefused(Exception):
    """A file that is not a DistLab run export, or is broken; the message names the line."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


def header(run: Run) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "v": SCHEMA_VERSION,
        "run": run.pk,
        "lab": run.lab,
        "scenario": run.scenario,
        "params": run.params,
        "seed": run.seed,
        "status": run.status,
        "verdict": run.verdict,
        "expected": run.expected,
        "invariants": run.invariants,
        "failure_reason": run.failure_reason,
        "events": run.events_count,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _line(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str) + "\n"


def _page(run_id: int, after: int) -> list[str]:
    events = Event.objects.filter(run_id=run_id, seq__gt=after).order_by("seq")[:PAGE]
    return [_line(e.as_dict()) for e in events]


def export_lines(run: Run) -> Iterator[str]:
    """The run as JSON lines, read a page of events at a time (keyset on seq, so memory stays flat)."""
    yield _line(header(run))
    after = 0
    while lines := _page(run.pk, after):
        yield from lines
        after += len(lines)  # seqs have no gaps


async def aexport_lines(run: Run) -> AsyncIterator[str]:
    """The same for an ASGI server, which would otherwise read a sync iterator whole before sending."""
    yield _line(header(run))
    after = 0
    while lines := await sync_to_async(_page)(run.pk, after):
        for line in lines:
            yield line
        after += len(lines)


def import_run(lines: Iterable[bytes | str], owner) -> Run:
    """Reads an export and records it as a finished run of `owner` (None: the command line), in one
    transaction: a file refused at any line leaves nothing behind."""
    lines = iter(lines)
    first = next(lines, None)
    if first is None:
        raise ImportRefused(1, "the file is empty; expected a DistLab run export (JSON lines)")
    head = _read_header(_json(first, 1))
    limit = settings.DISTLAB_RUN_EVENT_LIMIT
    if head["events"] > limit:
        raise ImportRefused(1, f"{head['events']} events is more than a run may record here ({limit})")
    # One transaction: the run and its events appear together or not at all.
    with transaction.atomic():
        run = Run.objects.create(
            owner=owner,
            lab=head["lab"],
            scenario=head["scenario"],
            params=head["params"],
            seed=head["seed"],
            status=head["status"],
            verdict=head["verdict"],
            expected=head["expected"],
            invariants=head["invariants"],
            failure_reason=head["failure_reason"],
            events_count=head["events"],
            started_at=head["started_at"],
            finished_at=head["finished_at"] or timezone.now(),
            imported_from={"run": head["run"], "imported_at": timezone.now().isoformat()},
        )
        batch, seq = [], 0
        for number, raw in enumerate(lines, start=2):
            if seq >= head["events"]:
                raise ImportRefused(number, f"the header says {head['events']} events; this line is one more")
            seq += 1
            batch.append(_read_event(_json(raw, number), number, seq, head["run"], run))
            if len(batch) >= PAGE:
                Event.objects.bulk_create(batch)
                batch = []
        if seq < head["events"]:
            raise ImportRefused(seq + 2, f"the file ends after {seq} events; the header says {head['events']}")
        Event.objects.bulk_create(batch)
    return run


def _json(raw: bytes | str, number: int) -> dict:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportRefused(number, "not UTF-8 text") from None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImportRefused(number, f"not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ImportRefused(number, "not a JSON object")
    return value


def _read_header(head: dict) -> dict:
    if head.get("format") != FORMAT:
        raise ImportRefused(1, f'not a DistLab run export (the header has no "format": "{FORMAT}")')
    if head.get("v") != SCHEMA_VERSION:
        raise ImportRefused(1, f"schema version {head.get('v')!r} is not one this DistLab reads ({SCHEMA_VERSION})")
    lab = LABS.get(head.get("lab"))
    if lab is None:
        raise ImportRefused(1, f"lab {head.get('lab')!r} is not installed here")
    if head.get("scenario") not in lab.scenarios:
        raise ImportRefused(1, f"lab {lab.name} has no scenario {head.get('scenario')!r}")
    verdicts = ("", *Run.Verdict.values)
    checks = {
        "run": lambda v: _whole(v) and v > 0,
        "params": lambda v: isinstance(v, dict),
        "seed": lambda v: _whole(v) and 0 <= v < 2**63,
        "status": lambda v: v in Run.FINISHED,
        "verdict": lambda v: v in verdicts,
        "expected": lambda v: v in verdicts,
        "invariants": lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
        "failure_reason": lambda v: isinstance(v, str),
        "events": lambda v: _whole(v) and v > 0,
    }
    for name, ok in checks.items():
        if name not in head or not ok(head[name]):
            raise ImportRefused(1, f"the header's {name!r} is missing or not valid")
    # The original times are kept as a record; a time that does not parse is left out, not refused.
    return head | {k: _moment(head.get(k)) for k in ("started_at", "finished_at")}


def _read_event(event: dict, number: int, seq: int, run_id: int, run: Run) -> Event:
    def refuse(message):
        return ImportRefused(number, message)

    if unknown := set(event) - EVENT_FIELDS:
        raise refuse(f"unknown field {sorted(unknown)[0]!r}")
    if event.get("v") != SCHEMA_VERSION:
        raise refuse(f"event schema version {event.get('v')!r} is not {SCHEMA_VERSION}")
    if event.get("run") != run_id:
        raise refuse(f"an event of run {event.get('run')!r} in the export of run {run_id}")
    if event.get("seq") != seq:
        raise refuse(f"seq {event.get('seq')!r} where {seq} comes next")
    t = event.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
        raise refuse("t must be a number (ms since the run started)")
    if event.get("kind") not in KINDS:
        raise refuse(f"unknown event kind {event.get('kind')!r}")
    for name, most in LIMITS.items():
        value = event.get(name, "")
        if not isinstance(value, str) or len(value) > most:
            raise refuse(f"{name} must be a string of at most {most} characters")
    if not isinstance(event.get("data"), dict):
        raise refuse("data must be a JSON object")
    return Event(
        run=run,
        seq=seq,
        t=event["t"],
        kind=event["kind"],
        actor=event.get("actor", ""),
        to=event.get("to", ""),
        label=event.get("label", ""),
        data=event["data"],
    )


def _moment(value: Any) -> datetime | None:
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is None or timezone.is_aware(moment) else None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
