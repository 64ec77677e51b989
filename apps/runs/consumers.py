"""The live stream of a run: /ws/runs/<id>/?after=N.

On connect the viewer joins the run's group first, then gets every stored event after N, then the
live batches; an event is sent only if its seq is the next one expected, so a viewer that
reconnects with `after` gets each event exactly once, in order. Any gap (a batch the channel layer
dropped for a slow viewer) is filled from the database.

The consumer only reads: if the run's worker dies, the reaper (beat and worker start, never the web
tier) fails the run and its status reaches viewers through the run's group like any other. Until
then the status frame says whether the run looks stale: while a run is queued or going, the
consumer looks again every few seconds and tells the viewer when its place in the queue or its
staleness changed.
"""

import asyncio
import contextlib
import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import api
from .models import Event, Run
from .serializers import ControlSerializer
from .sinks import group_name
from .status import status_frame

BACKLOG_BATCH = 1000
REFRESH_EVERY = 3.0  # seconds between looks at a queued or going run's place and heartbeat


class RunConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        self.group = group_name(self.run_id)
        self.user = self.scope.get("user")
        if not self.user or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        run = await self.get_run()
        if run is None:
            await self.close(code=4404)
            return
        try:
            after = int(parse_qs(self.scope["query_string"].decode()).get("after", ["0"])[0])
            if after < 0:
                raise ValueError
        except ValueError:
            await self.accept()
            await self.send_json({"type": "error", "message": "after must be a whole number, 0 or more"})
            await self.close(code=4400)
            return
        self.last_seq = after
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_status(await self.frame_of(run))
        await self.send_stored()
        self.ticker = asyncio.create_task(self.tick()) if not run.is_finished else None

    async def disconnect(self, code):
        if getattr(self, "ticker", None):
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
        if hasattr(self, "last_seq"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def tick(self):
        # The look goes through the consumer's own channel, so it is handled in order with the
        # run's messages: a frame read here can never overtake a newer status from the run.
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            await self.channel_layer.send(self.channel_name, {"type": "run.refresh"})

    async def send_status(self, frame):
        self.last_status = frame
        await self.send_json(frame)

    def _told(self, frame):
        """What of a status frame a viewer sees change: the status, the queue and staleness."""
        return (frame.get("status"), frame.get("queue"), frame.get("stale"))

    # From the run -------------------------------------------------------------------------------
    async def run_events(self, message):
        first, last = message["first"], message["last"]
        if last <= self.last_seq:
            return
        if first > self.last_seq + 1:
            await self.send_stored(upto=first - 1)
        if first == self.last_seq + 1:
            self.last_seq = last
            await self.send(text_data=message["frame"])
            return
        # The batch overlaps what the viewer already has: send only the rest.
        fresh = [e for e in json.loads(message["frame"])["events"] if e["seq"] > self.last_seq]
        if fresh:
            self.last_seq = fresh[-1]["seq"]
            await self.send_json({"type": "events", "events": fresh})

    async def run_status(self, message):
        frame = message["frame"]
        if frame["status"] in Run.FINISHED:
            # The end event is written before this status; make sure the viewer has it first.
            await self.send_stored()
        await self.send_status(frame)

    async def run_refresh(self, message):
        run = await self.get_run()
        if run is None:
            return
        frame = await self.frame_of(run)
        if self._told(frame) != self._told(self.last_status):
            if run.is_finished:
                await self.send_stored()  # as run_status does: the end event before the status
            await self.send_status(frame)
        if run.is_finished and self.ticker:
            self.ticker.cancel()

    async def send_stored(self, upto=None):
        while True:
            events = await self.stored_events(self.last_seq, upto)
            if not events:
                return
            self.last_seq = events[-1]["seq"]
            await self.send_json({"type": "events", "events": events})
            if len(events) < BACKLOG_BATCH:
                return

    # From the viewer ----------------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        try:
            content = json.loads(text_data or "")
            if not isinstance(content, dict):
                raise ValueError
        except ValueError:
            await self.send_json({"type": "error", "message": 'send a JSON object such as {"action": "pause"}'})
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        outcome = await self.control(content)
        await self.send_json(outcome)

    # Database -------------------------------------------------------------------------------------
    @database_sync_to_async
    def get_run(self):
        run = Run.objects.filter(pk=self.run_id).first()
        return run if run and run.visible_to(self.user) else None

    @database_sync_to_async
    def frame_of(self, run):
        return status_frame(run)  # a queued run's place in the queue is read from the database

    @database_sync_to_async
    def stored_events(self, after, upto):
        qs = Event.objects.filter(run_id=self.run_id, seq__gt=after).order_by("seq")
        if upto is not None:
            qs = qs.filter(seq__lte=upto)
        return [e.as_dict() for e in qs[:BACKLOG_BATCH]]

    @database_sync_to_async
    def control(self, content):
        run = Run.objects.filter(pk=self.run_id).first()
        if run is None or not run.visible_to(self.user):
            return {"type": "error", "message": "this run is not yours to control"}
        if not run.controllable_by(self.user):
            return {"type": "error", "message": api.NOT_YOURS}
        serializer = ControlSerializer(data=content, context={"run": run})
        if not serializer.is_valid():
            return {"type": "error", "message": "bad control action", "errors": serializer.errors}
        outcome = api.apply_control(run, serializer.command(self.user))
        if outcome is None:
            return {"type": "error", "message": f"the run is {run.status}; it takes no more actions"}
        return {"type": "accepted", **outcome}
