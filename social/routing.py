"""WebSocket URL routes of every app."""

from dm.routing import websocket_urlpatterns as dm_routes
from notifications.routing import websocket_urlpatterns as notification_routes

websocket_urlpatterns = [*notification_routes, *dm_routes]
