"""WebSocket URL routes of every app, then a catch-all that answers unknown paths with 4404."""

from django.urls import re_path

from dm.routing import websocket_urlpatterns as dm_routes
from notifications.routing import websocket_urlpatterns as notification_routes
from social.realtime.consumers import NotFoundConsumer

websocket_urlpatterns = [*notification_routes, *dm_routes, re_path(r"", NotFoundConsumer.as_asgi())]
