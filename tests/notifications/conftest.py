"""Fixtures of the notifications tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from social.models import Post
from social.realtime import publish
from social.realtime.groups import user_group
from social.realtime.protocol import EVENT_RELAY
from tests.support.sockets import Socket, Sockets


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def post(alice):
    """alice's post "Hello"."""
    return Post.objects.create(author=alice, title="Hello", body="first")


@pytest.fixture
def bell(sockets: Sockets) -> Callable[..., Awaitable[Socket]]:
    """``await bell(cookie, "?after=3")`` -> an open /ws/notifications/ socket (in this process)."""

    def open_bell(cookie: str, query: str = "") -> Awaitable[Socket]:
        return sockets.open(f"/ws/notifications/{query}", cookie=cookie)

    return open_bell


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
