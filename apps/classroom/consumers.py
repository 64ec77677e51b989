"""The classroom's websockets for presenting.

/ws/classroom/            the viewer's classes: the live presentations on connect, then each one
                          that starts or ends (the banner every page shows)
/ws/presentations/<id>/   the presenter sends view frames; the server stores the latest and relays
                          it to the followers, who get the current view on connect

Both only read and relay; the presenter's view is the one thing saved, as what they submitted.
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .models import Classroom, Presentation
from .presenting import (
    ALREADY_ENDED,
    ONLY_THE_PRESENTER,
    PRESENTATIONS_LAYER,
    class_group,
    clean_view,
    describe,
    live_presentations,
    presentation_group,
    store_view,
)

NOT_LOGGED_IN = "log in to follow presentations"
# One UPDATE of the presentation's row, in a thread of the pool with a connection of its own.
store_off_the_queue = database_sync_to_async(store_view, thread_sensitive=False)
NOT_YOURS = "no such presentation, or it is not for a class of yours"


class JsonConsumer(AsyncJsonWebsocketConsumer):
    async def refuse(self, message, code):
        await self.send_json({"type": "error", "message": message})
        await self.close(code=code)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            content = json.loads(text_data or "")
            if not isinstance(content, dict):
                raise ValueError
        except ValueError:
            await self.send_json({"type": "error", "message": "send a JSON object"})
            return
        await self.receive_json(content)


class ClassroomConsumer(JsonConsumer):
    async def connect(self):
        self.user = self.scope.get("user")
        self.groups_joined = []
        await self.accept()
        if not (self.user and self.user.is_authenticated):
            await self.refuse(NOT_LOGGED_IN, 4401)
            return
        class_ids, presentations = await self.classes()
        for class_id in class_ids:
            group = class_group(class_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.send_json({"type": "presentations", "presentations": presentations})

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "message": "this socket only tells; it takes no actions"})

    async def classroom_started(self, message):
        await self.send_json({"type": "started", "presentation": message["presentation"]})

    async def classroom_ended(self, message):
        await self.send_json({"type": "ended", "presentation": message["presentation"]})

    @database_sync_to_async
    def classes(self):
        classes = list(Classroom.of(self.user).values_list("pk", flat=True))
        return classes, [describe(p) for p in live_presentations(classes)]


class PresentationConsumer(JsonConsumer):
    # A layer of its own, so a view frame never queues behind the run's batches (settings).
    channel_layer_alias = PRESENTATIONS_LAYER

    async def connect(self):
        self.presentation_id = self.scope["url_route"]["kwargs"]["presentation_id"]
        self.group = presentation_group(self.presentation_id)
        self.user = self.scope.get("user")
        self.joined = False
        await self.accept()
        if not (self.user and self.user.is_authenticated):
            await self.refuse(NOT_LOGGED_IN, 4401)
            return
        presentation = await self.presentation()
        if presentation is None:
            await self.refuse(NOT_YOURS, 4403)
            return
        self.presenter_id = presentation["presenter"]["id"]
        if presentation["ended"]:
            await self.send_json({"type": "ended", "presentation": {"id": presentation["id"]}})
            await self.close(code=1000)
            return
        # Joined before the current view is read, so no frame falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        presentation = await self.presentation() or presentation
        you = "presenter" if self.presenter_id == self.user.pk else "follower"
        await self.send_json({"type": "presentation", "you": you, "presentation": presentation})

    async def disconnect(self, code):
        if self.joined:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("action") != "view":
            await self.send_json({"type": "error", "message": 'the one action is {"action": "view", ...}'})
            return
        if self.user.pk != self.presenter_id:
            await self.send_json({"type": "error", "message": ONLY_THE_PRESENTER})
            return
        view, errors = clean_view(content)
        if errors:
            await self.send_json({"type": "error", "message": "bad view frame", "errors": errors})
            return
        # Stored, then relayed, so a follower joining meanwhile reads this view or gets it relayed.
        # The store runs off the process's one database thread, where it would wait behind every
        # follower's look at the run.
        if not await store_off_the_queue(self.presentation_id, self.user.pk, view):
            await self.send_json({"type": "error", "message": ALREADY_ENDED})
            return
        message = {"type": "presentation.view", "view": view, "sender": self.channel_name}
        await self.channel_layer.group_send(self.group, message)

    async def presentation_view(self, message):
        if message.get("sender") != self.channel_name:
            await self.send_json({"type": "view", "view": message["view"]})

    async def presentation_ended(self, message):
        await self.send_json({"type": "ended", "presentation": message["presentation"]})
        await self.close(code=1000)

    @database_sync_to_async
    def presentation(self):
        presentation = (
            Presentation.objects.filter(pk=self.presentation_id).select_related("classroom", "run", "presenter").first()
        )
        if presentation is None or not presentation.classroom.has_member(self.user):
            return None
        return describe(presentation)
