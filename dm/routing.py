"""WebSocket routes of the messaging app."""

from django.urls import path

from dm.consumers import DirectConsumer, RoomConsumer

websocket_urlpatterns = [
    path("ws/dm/<str:username>/", DirectConsumer.as_asgi()),
    path("ws/rooms/<str:slug>/", RoomConsumer.as_asgi()),
]
