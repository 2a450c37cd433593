"""P1: the tutorial approach, served by daphne as ``bench.naive_asgi:application``.

A sync ``WebsocketConsumer`` that joins a group on connect and calls
``async_to_sync(channel_layer.group_send)`` per message; every receiving socket's handler runs in
the sync thread pool and serialises its own copy of the frame. No database, no auth: identity
comes from ``?as=<username>&uid=<id>``. Paths and frames match the app's for the bench.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from typing import Any
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive_settings")
django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.generic.websocket import WebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

_ids = itertools.count(1)


class ChatConsumer(WebsocketConsumer):
    """Room and DM chat, exactly as the tutorials write it."""

    def connect(self) -> None:
        """Join the group, accept, say ready."""
        query = {k: v[0] for k, v in parse_qs(self.scope["query_string"].decode()).items()}
        self.user = {"id": int(query.get("uid", "0")), "username": query.get("as", "anon")}
        kwargs = self.scope["url_route"]["kwargs"]
        if "slug" in kwargs:
            self.group_name = f"room_{kwargs['slug']}"
            ready: dict[str, Any] = {"type": "ready", "conversation": 1, "room": {"slug": kwargs["slug"]}, "online": []}
        else:
            lo, hi = sorted((self.user["username"], kwargs["username"]))
            self.group_name = f"dm_{lo}_{hi}"
            ready = {"type": "ready", "conversation": 1, "peer": {"id": 0, "username": kwargs["username"]}, "read": {}}
        async_to_sync(self.channel_layer.group_add)(self.group_name, self.channel_name)
        self.accept()
        self.send(text_data=json.dumps(ready))

    def disconnect(self, code: int) -> None:
        """Leave the group."""
        async_to_sync(self.channel_layer.group_discard)(self.group_name, self.channel_name)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Broadcast a message frame to the group."""
        data = json.loads(text_data or "{}")
        if data.get("type") != "message":
            return
        message = {
            "id": next(_ids),
            "conversation": 1,
            "sender": self.user,
            "body": data.get("body", ""),
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "client_id": data.get("client_id"),
        }
        async_to_sync(self.channel_layer.group_send)(self.group_name, {"type": "chat.message", "message": message})

    def chat_message(self, event: dict[str, Any]) -> None:
        """Send the group message to this socket."""
        self.send(text_data=json.dumps({"type": "message", "message": event["message"]}))


class NotificationConsumer(WebsocketConsumer):
    """Personal group ``user_<uid>``; pushes come from another process via ``group_send``."""

    def connect(self) -> None:
        """Join the personal group, accept, say ready."""
        query = {k: v[0] for k, v in parse_qs(self.scope["query_string"].decode()).items()}
        self.group_name = f"user_{int(query.get('uid', '0'))}"
        async_to_sync(self.channel_layer.group_add)(self.group_name, self.channel_name)
        self.accept()
        self.send(text_data=json.dumps({"type": "ready", "unread": 0, "inbox_unread": 0}))

    def disconnect(self, code: int) -> None:
        """Leave the personal group."""
        async_to_sync(self.channel_layer.group_discard)(self.group_name, self.channel_name)

    def notify_message(self, event: dict[str, Any]) -> None:
        """Forward a pushed notification."""
        self.send(
            text_data=json.dumps(
                {"type": "notification", "notification": event["notification"], "unread": event["unread"]}
            )
        )


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/rooms/<slug:slug>/", ChatConsumer.as_asgi()),
                path("ws/dm/<str:username>/", ChatConsumer.as_asgi()),
                path("ws/notifications/", NotificationConsumer.as_asgi()),
            ]
        ),
    }
)
