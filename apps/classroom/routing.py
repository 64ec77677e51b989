# The classroom's websocket paths; labsite/asgi.py routes them next to the runs' ones.
from django.urls import path

from .board import BoardConsumer
from .consumers import ClassroomConsumer, PresentationConsumer

websocket_urlpatterns = [
    path("ws/classes/<int:class_id>/board/", BoardConsumer.as_asgi()),
    path("ws/classroom/", ClassroomConsumer.as_asgi()),
    path("ws/presentations/<int:presentation_id>/", PresentationConsumer.as_asgi()),
]
