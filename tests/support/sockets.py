"""In-process WebSocket clients: channels' WebsocketCommunicator through the whole ASGI stack.

``WsClient`` in tests/support/clients.py is the same client for a real daphne process.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from channels.testing import WebsocketCommunicator

from social.asgi import application
from tests.support.frames import FrameReader

ORIGIN = "http://localhost"
DEFAULT_TIMEOUT = 3.0


def communicator(
    path: str, *, cookie: str | None = None, origin: str | None = ORIGIN, app: Any = None
) -> WebsocketCommunicator:
    """A not yet connected communicator with the Origin and Cookie headers a browser would send."""
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(app or application, path, headers=headers)


class Socket(FrameReader):
    """A connected in-process socket speaking the JSON frames of PROTOCOL.md."""

    default_timeout = DEFAULT_TIMEOUT

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        """Send a frame: a dict as JSON, a str as it is (even empty), bytes as a binary frame."""
        if isinstance(frame, bytes):
            await self.communicator.send_input({"type": "websocket.receive", "bytes": frame})
        else:
            text = frame if isinstance(frame, str) else json.dumps(frame)
            await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def recv(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return await self.communicator.receive_json_from(timeout)

    async def output(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """The next ASGI message the server sends: a frame (``websocket.send``) or ``websocket.close``."""
        return await self.communicator.receive_output(timeout)


    async def drain(self, quiet: float = 0.1) -> list[dict[str, Any]]:
        """Receive until nothing arrives for ``quiet`` seconds."""
        frames = []
        while not await self.communicator.receive_nothing(quiet):
            frames.append(await self.recv())
        return frames

    async def silent(self, timeout: float = 0.2) -> bool:
        """True when nothing arrives within ``timeout``."""
        return await self.communicator.receive_nothing(timeout)

    async def closed_with(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Skip frames until the server closes; return the close code."""
        while True:
            output = await self.output(timeout)
            if output["type"] == "websocket.close":
                return output["code"]

    async def close(self) -> None:
        """The client goes away (the server sees a disconnect)."""
        await self.communicator.disconnect()


async def open_socket(path: str, *, cookie: str | None = None, origin: str | None = ORIGIN) -> Socket:
    """Connect and return the socket; the handshake must be accepted."""
    socket = communicator(path, cookie=cookie, origin=origin)
    connected, _ = await socket.connect()
    assert connected, f"the handshake of {path} was refused"
    return Socket(socket)


async def refused(path: str, *, cookie: str | None = None, origin: str | None = ORIGIN) -> bool:
    """True when the server refuses the handshake itself (before any consumer accepts)."""
    connected, _ = await communicator(path, cookie=cookie, origin=origin).connect()
    return not connected


class Sockets:
    """Opens in-process sockets and disconnects, at the end of the test, those still open."""

    def __init__(self) -> None:
        self.opened: list[Socket] = []

    async def open(self, path: str, *, cookie: str | None = None, origin: str | None = ORIGIN) -> Socket:
        socket = await open_socket(path, cookie=cookie, origin=origin)
        self.opened.append(socket)
        return socket

    async def close_all(self) -> None:
        for socket in self.opened:
            # Sockets a test already closed are gone: nothing to clean up.
            with contextlib.suppress(Exception):
                await socket.close()
