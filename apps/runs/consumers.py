"""The live stream of a run: /ws/runs/<id>/?after=N.

On connect the viewer joins the run's group first, then gets every stored event after N, then the
live batches; an event is sent only if its seq is the next one expected, so a viewer that
reconnects with `after` gets each event exactly once, in order. Any gap (a batch the channel layer
dropped for a slow viewer) is filled from the database.
"""

import asyncio
import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import api
from .models import Event, Run
from .reaper import reap_stale_runs
from .serializers import ControlSerializer
from .sinks import group_name
from .status import status_frame

BACKLOG_BATCH = 1000
REAP_EVERY = 5.0


class Watchdog:
    """Fails a run if its worker dies while someone watches it, so no viewer waits forever. One per
    watched run in this process, however many viewers it has."""

    running = {}

    def __init__(self, run_id):
        self.run_id = run_id
        self.viewers = 0
        self.task = asyncio.create_task(self.watch())

    @classmethod
    def join(cls, run_id):
        dog = cls.running.get(run_id) or cls.running.setdefault(run_id, cls(run_id))
        dog.viewers += 1
        return dog

    def leave(self):
        self.viewers -= 1
        if self.viewers <= 0:
            self.task.cancel()
            self.running.pop(self.run_id, None)

    async def watch(self):
        while True:
            await asyncio.sleep(REAP_EVERY)
            await database_sync_to_async(reap_stale_runs)([self.run_id])


class RunConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        self.group = group_name(self.run_id)
        self.user = self.scope.get("user")
        self.watchdog = None
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
        await self.send_json(status_frame(run))
        await self.send_stored()
        if not run.is_finished:
            self.watchdog = Watchdog.join(run.pk)

    async def disconnect(self, code):
        if self.watchdog:
            self.watchdog.leave()
        if hasattr(self, "last_seq"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

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
        await self.send_json(frame)

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
        serializer = ControlSerializer(data=content, context={"run": run})
        if not serializer.is_valid():
            return {"type": "error", "message": "bad control action", "errors": serializer.errors}
        outcome = api.apply_control(run, serializer.command(self.user))
        if outcome is None:
            return {"type": "error", "message": f"the run is {run.status}; it takes no more actions"}
        return {"type": "accepted", **outcome}
