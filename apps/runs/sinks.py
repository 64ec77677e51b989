"""Where a live run's events go: the control database (durable) and the channel layer (live).

Both sinks use the batch's one JSON encoding (recorder.Batch): the database unpacks it with
JSON_TABLE in one INSERT ... SELECT, and the channel frame wraps it as it is. Binding each event's
values one by one (the driver escapes text character by character) and encoding the events once per
sink took about 27 µs of CPU per event; this takes about 10 (bench/README.md, the recording cost).
"""

import asyncio

from channels.layers import get_channel_layer
from django.db import connection
from django.db.models import Count, Max

from .models import Event, Run
from .recorder import Batch

# The identifiers come from the models, quoted; the run's id and the batch are bound parameters.
_q = connection.ops.quote_name


def _column(model, name):
    return _q(model._meta.get_field(name).column)


_INSERT_EVENTS = (
    f"INSERT INTO {_q(Event._meta.db_table)} "
    f"({', '.join(_column(Event, name) for name in ('run', 'seq', 't', 'kind', 'actor', 'to', 'label', 'data'))}) "
    # The same cuts the model's max_length makes; an event without `to` has none in its JSON.
    "SELECT %s, e.seq, e.t, e.kind, LEFT(e.actor, 80), LEFT(COALESCE(e.dest, ''), 80), LEFT(e.label, 500), e.data "
    "FROM JSON_TABLE(CONVERT(%s USING utf8mb4), '$[*]' COLUMNS (seq INT UNSIGNED PATH '$.seq', t DOUBLE PATH '$.t', "
    "kind VARCHAR(12) PATH '$.kind', actor LONGTEXT PATH '$.actor', dest LONGTEXT PATH '$.to', "
    "label LONGTEXT PATH '$.label', data JSON PATH '$.data')) AS e"
)
_COUNT_EVENTS = (
    f"UPDATE {_q(Run._meta.db_table)} SET {_column(Run, 'events_count')} = %s WHERE {_column(Run, 'id')} = %s"
)


def group_name(run_id):
    return f"run-{int(run_id)}"


def events_message(events):
    """The channel-layer message for a batch: the websocket frame is encoded once, here, rather than
    once per viewer; `first` and `last` let each viewer check it is the batch it expects next."""
    events = events if isinstance(events, Batch) else Batch(events)
    frame = '{"type":"events","events":' + events.json() + "}"
    return {"type": "run.events", "first": events[0]["seq"], "last": events[-1]["seq"], "frame": frame}


class DatabaseSink:
    def __init__(self, run_id):
        self.run_id = run_id

    def write(self, events):
        events = events if isinstance(events, Batch) else Batch(events)
        with connection.cursor() as cur:
            # The batch is bound as bytes, which the driver sends as one hex literal: escaping the
            # text instead, character by character, cost more CPU than encoding it.
            cur.execute(_INSERT_EVENTS, (self.run_id, events.json().encode()))
            cur.execute(_COUNT_EVENTS, (events[-1]["seq"], self.run_id))

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
