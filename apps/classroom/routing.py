# The classroom's websocket paths; labsite/asgi.py routes them next to the runs' ones.
from django.urls import path

from .board import BoardConsumer

websocket_urlpatterns = [
    path("ws/classes/<int:class_id>/board/", BoardConsumer.as_asgi()),
]
