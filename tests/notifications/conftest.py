"""Fixtures of the notifications tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from social.asgi import application
from social.realtime import publish
from social.realtime.groups import user_group
from social.realtime.protocol import EVENT_RELAY


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@contextlib.asynccontextmanager
async def bell_socket(cookie: str, query: str = "") -> AsyncIterator[WebsocketCommunicator]:
    """An open /ws/notifications/ socket through the whole ASGI stack (in this process)."""
    communicator = WebsocketCommunicator(
        application,
        f"/ws/notifications/{query}",
        headers=[(b"origin", b"http://localhost"), (b"cookie", cookie.encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def until_ready(communicator: WebsocketCommunicator) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The replay frames and the ready frame."""
    replay = []
    while True:
        frame = await communicator.receive_json_from(timeout=3)
        if frame["type"] == "ready":
            return replay, frame
        replay.append(frame)


class Pushes(list):
    """Frames pushed through publish.group_send_sync, as (group, frame) pairs."""

    def to(self, user: Any) -> list[dict[str, Any]]:
        return [frame for group, frame in self if group == user_group(user.pk)]


@pytest.fixture
def pushes(monkeypatch) -> Pushes:
    """Record what would reach the channel layer (after on_commit) instead of sending it."""
    recorded = Pushes()

    def record(group: str, event: dict[str, Any]) -> bool:
        assert event["type"] == EVENT_RELAY
        recorded.append((group, json.loads(event["text"])))
        return True

    monkeypatch.setattr(publish, "group_send_sync", record)
    return recorded
