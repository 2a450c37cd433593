"""WebSocket routes of the messaging app."""

from django.urls import path

from dm.consumers import DirectConsumer, RoomConsumer
from social import converters  # noqa: F401  (registers the username and roomslug converters)

websocket_urlpatterns = [
    path("ws/dm/<username:username>/", DirectConsumer.as_asgi()),
    path("ws/rooms/<roomslug:slug>/", RoomConsumer.as_asgi()),
]
