"""Where a live run's events go: the control database (durable) and the channel layer (live)."""

import asyncio
import json

from channels.layers import get_channel_layer
from django.db import connection
from django.db.models import Count, Max

from .models import Event, Run

# The identifiers come from the model, quoted; every value is a bound parameter.
_q = connection.ops.quote_name
_FIELDS = ("run", "seq", "t", "kind", "actor", "to", "label", "data")
_INSERT_EVENTS = "INSERT INTO {} ({}) VALUES ({})".format(
    _q(Event._meta.db_table),
    ", ".join(_q(Event._meta.get_field(name).column) for name in _FIELDS),
    ", ".join(["%s"] * len(_FIELDS)),
)


def group_name(run_id):
    return f"run-{int(run_id)}"


def events_message(events):
    """The channel-layer message for a batch: the websocket frame is encoded once, here, rather than
    once per viewer; `first` and `last` let each viewer check it is the batch it expects next."""
    frame = json.dumps({"type": "events", "events": events}, separators=(",", ":"), default=str)
    return {"type": "run.events", "first": events[0]["seq"], "last": events[-1]["seq"], "frame": frame}


class DatabaseSink:
    def __init__(self, run_id):
        self.run_id = run_id

    def write(self, events):
        # One executemany of bound parameters, not bulk_create: the ORM's per-object work cost
        # about four times the insert itself (bench/README.md), and a lab records every command.
        rows = [
            (
                self.run_id,
                e["seq"],
                e["t"],
                e["kind"],
                e["actor"][:80],
                e.get("to", "")[:80],
                e["label"][:500],
                json.dumps(e["data"], separators=(",", ":"), default=str),
            )
            for e in events
        ]
        with connection.cursor() as cur:
            cur.executemany(_INSERT_EVENTS, rows)
        Run.objects.filter(pk=self.run_id).update(events_count=events[-1]["seq"])

    def stored(self):
        """(how many events are stored, the highest seq): what really reached the database."""
        agg = Event.objects.filter(run_id=self.run_id).aggregate(n=Count("id"), last=Max("seq"))
        return agg["n"], agg["last"] or 0

    def close(self):
        pass


class ChannelSink:
    """Publishes each batch to the run's group. Runs its own event loop, so the channel layer's
    connection pool (kept per loop) is reused from batch to batch."""

    def __init__(self, run_id):
        self.group = group_name(run_id)
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()

    def write(self, events):
        self.loop.run_until_complete(self.layer.group_send(self.group, events_message(events)))

    def close(self):
        try:
            close_pools = getattr(self.layer, "close_pools", None)
            if close_pools:
                self.loop.run_until_complete(close_pools())
        finally:
            self.loop.close()
