"""Real WebSocket and HTTP clients for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import websockets
from django.conf import settings
from django.test import Client

from tests.support.frames import FrameReader

DEFAULT_TIMEOUT = 5.0


def session_cookie(user: Any) -> str:
    """Log the user in (a real session row) and return the Cookie header value."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class WsClient(FrameReader):
    """A real WebSocket client speaking the JSON frames of PROTOCOL.md."""

    default_timeout = DEFAULT_TIMEOUT

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @classmethod
    async def open(
        cls,
        server: Any,
        path: str,
        *,
        cookie: str | None = None,
        origin: str | None = None,
        max_queue: int = 256,
        receive_buffer: int | None = None,
    ) -> WsClient:
        """Connect; a small ``max_queue`` makes a reader that stops reading from TCP when it lags,
        and a small ``receive_buffer`` (bytes) makes the server's writes back up soon after."""
        headers = {"Cookie": cookie} if cookie else {}
        extra: dict[str, Any] = {}
        if receive_buffer is not None:
            # Set before connecting: the TCP window is agreed in the handshake.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
            extra["sock"] = sock
        connection = await websockets.connect(
            server.ws_url(path),
            additional_headers=headers,
            origin=origin or server.origin,
            max_size=2**22,
            max_queue=max_queue,
            **extra,
        )
        return cls(connection)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    async def recv(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))


    async def silent(self, timeout: float = 0.5) -> bool:
        """True when nothing arrives within ``timeout``."""
        try:
            frame = await self.recv(timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"expected silence, got {frame}")

    async def closed_with(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the server to close; return the close code."""
        try:
            while True:
                await asyncio.wait_for(self.connection.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006

    async def close(self) -> None:
        await self.connection.close()
