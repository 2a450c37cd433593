"""Fixtures of the messaging tests: users, their sessions, in-process sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from dm import services
from social.asgi import application


@pytest.fixture
def users(make_user: Callable[..., Any]) -> dict[str, Any]:
    """alice, bob and carol."""
    return {name: make_user(name) for name in ("alice", "bob", "carol")}


@pytest.fixture
def cookies(users: dict[str, Any], cookie_for: Callable[[Any], str]) -> dict[str, str]:
    """A logged-in session cookie per user."""
    return {name: cookie_for(user) for name, user in users.items()}


class Socket:
    """A WebsocketCommunicator speaking JSON frames, with helpers for close codes."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.communicator.send_to(bytes_data=frame)
        else:
            await self.communicator.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 2) -> dict[str, Any]:
        return await self.communicator.receive_json_from(timeout)

    async def recv_type(self, frame_type: str, timeout: float = 2) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == frame_type:
                return frame

    async def until_ready(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        replay = []
        while True:
            frame = await self.recv()
            if frame["type"] == "ready":
                return replay, frame
            replay.append(frame)

    async def drain(self, quiet: float = 0.1) -> list[dict[str, Any]]:
        """Receive until nothing arrives for ``quiet`` seconds."""
        frames = []
        while not await self.communicator.receive_nothing(quiet):
            frames.append(await self.recv())
        return frames

    async def silent(self, timeout: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def closed_with(self, timeout: float = 2) -> int:
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output["code"]


@pytest.fixture
async def connect(cookies: dict[str, str]) -> AsyncIterator[Callable[..., Any]]:
    """``await connect("alice", "/ws/dm/bob/")`` -> an accepted Socket (disconnected afterwards)."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(name: str | None, path: str) -> Socket:
        headers = [(b"origin", b"http://localhost")]
        if name is not None:
            headers.append((b"cookie", cookies[name].encode()))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        opened.append(communicator)
        return Socket(communicator)

    yield open_socket
    for communicator in opened:
        # Sockets a test already closed are gone: nothing to clean up.
        with contextlib.suppress(Exception):
            await communicator.disconnect()


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
