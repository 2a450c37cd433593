"""Fixtures of the messaging tests: rooms, members, a listener on a channel-layer group."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.layers import get_channel_layer

from dm import services


@pytest.fixture
def room(users: dict[str, Any]) -> Any:
    """The public room "general", created by alice."""
    return services.room_create(creator=users["alice"], name="General", slug="general", private=False)


@pytest.fixture
def secret(users: dict[str, Any], add_member: Callable[[Any, Any], None]) -> Any:
    """The private room "secret": alice created it, bob is a member."""
    room = services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)
    add_member(room, users["bob"])
    return room


@pytest.fixture
async def listen() -> AsyncIterator[Callable[..., Any]]:
    """Listen on a channel-layer group: ``inbox = await listen(user_group(id))``; ``await inbox()`` -> frame."""
    layer = get_channel_layer()

    async def subscribe(group: str) -> Callable[..., Any]:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)

        async def receive(timeout: float = 2) -> dict[str, Any]:
            event = await asyncio.wait_for(layer.receive(channel), timeout)
            return json.loads(event["text"])

        return receive

    yield subscribe


@pytest.fixture
def add_member() -> Callable[[Any, Any], None]:
    """``add_member(room, user)``: the room's creator invites ``user``, who accepts."""

    def invite_and_accept(room: Any, user: Any) -> None:
        services.room_invite(inviter=room.created_by, room=room, invitee=user)
        services.room_invitation_accept(user=user, room=room)

    return invite_and_accept
