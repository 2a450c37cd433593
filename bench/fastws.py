"""A minimal asyncio WebSocket client for load generation.

The ``websockets`` client spends a task switch and several generator steps per frame; at tens of
thousands of fan-out frames per second that makes the load generator, not the server, the
bottleneck on a 2-core machine. This protocol parses every frame that arrived in one TCP read in
a tight loop and hands the raw payload plus one receipt timestamp to a callback, so the client
stays far below one core. It speaks just enough RFC 6455 for the bench: masked client text
frames, unmasked server frames, ping/pong, close, continuation frames. No extensions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OnMessage = Callable[["WSConn", bytes, int], None]


class HandshakeError(Exception):
    """The server refused the upgrade (HTTP status) or closed before the ``ready`` frame."""

    def __init__(self, message: str, status: int | None = None, close_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.close_code = close_code


def _frame(opcode: int, payload: bytes) -> bytes:
    """Encode one final, masked client frame."""
    n = len(payload)
    head = bytearray((0x80 | opcode,))
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += n.to_bytes(8, "big")
    mask = os.urandom(4)
    head += mask
    if n:
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return bytes(head) + payload


class WSConn(asyncio.Protocol):
    """One client connection. Frames before the server's ``ready`` frame are JSON-decoded and kept
    in ``pre_ready``; afterwards every data frame goes to ``on_message(conn, payload, recv_ns)``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        headers: Mapping[str, str] | None = None,
        on_message: OnMessage | None = None,
        tag: Any = None,
        wait_ready: bool = True,
    ) -> None:
        """Prepare a connection; use :func:`connect` to open it."""
        loop = asyncio.get_running_loop()
        self.host, self.port, self.path = host, port, path
        self.headers = dict(headers or {})
        self.on_message = on_message
        self.tag = tag
        self.wait_ready = wait_ready
        self.ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        # A caller that gave up (timeout) never reads a late failure: consume it here.
        self.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.pre_ready: list[dict[str, Any]] = []
        self.status: int | None = None
        self.close_code: int | None = None
        self.frames_received = 0
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._upgraded = False
        self._ready_seen = False
        self._fragments: list[bytes] = []
        self._key = base64.b64encode(os.urandom(16))

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the HTTP upgrade request."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def data_received(self, data: bytes) -> None:
        """Parse every complete frame in the buffer; one timestamp per TCP read."""
        now = time.time_ns()
        buf = self._buf
        buf += data
        if not self._upgraded and not self._handshake(buf):
            return
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            hdr = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                hdr = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            if b1 & 0x80:
                hdr += 4  # a masked server frame is a protocol error; tolerate it
            end = pos + hdr + length
            if end > n:
                break
            payload = bytes(buf[pos + hdr : end])
            if b1 & 0x80:
                key = bytes(buf[pos + hdr - 4 : pos + hdr])
                payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            pos = end
            self._frame_in(b0 & 0x80, b0 & 0x0F, payload, now)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        """Resolve the futures so nobody waits forever."""
        if not self.ready.done():
            self.ready.set_exception(
                HandshakeError(
                    f"connection lost before ready (status={self.status}, close={self.close_code})",
                    self.status,
                    self.close_code,
                )
            )
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # -- internals --------------------------------------------------------------------------
    def _handshake(self, buf: bytearray) -> bool:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        try:
            self.status = int(head[0].split()[1])
        except (IndexError, ValueError):
            self.status = 0
        accept = ""
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-accept":
                accept = value.strip()
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        if self.status != 101 or accept != expected:
            if not self.ready.done():
                self.ready.set_exception(HandshakeError(f"upgrade refused: HTTP {self.status}", self.status))
            assert self.transport is not None
            self.transport.close()
            return False
        self._upgraded = True
        if not self.wait_ready:
            self._ready_seen = True
            self.ready.set_result({})
        return True

    def _frame_in(self, fin: int, opcode: int, payload: bytes, now: int) -> None:
        if opcode >= 8:
            if opcode == 9:
                self._write(10, payload)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._write(8, payload[:2])
                assert self.transport is not None
                self.transport.close()
            return
        if not fin or self._fragments:
            self._fragments.append(payload)
            if not fin:
                return
            payload = b"".join(self._fragments)
            self._fragments = []
        self.frames_received += 1
        if self._ready_seen:
            if self.on_message is not None:
                self.on_message(self, payload, now)
            return
        try:
            obj = json.loads(payload)
        except ValueError:
            obj = {"type": "<undecodable>"}
        if isinstance(obj, dict) and obj.get("type") == "ready":
            self._ready_seen = True
            if not self.ready.done():
                self.ready.set_result(obj)
        else:
            self.pre_ready.append(obj)

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(opcode, payload))

    # -- public -----------------------------------------------------------------------------
    def send_text(self, text: str) -> None:
        """Queue one text frame (non-blocking)."""
        self._write(1, text.encode())

    def send_json(self, obj: Any) -> None:
        """Queue one JSON text frame."""
        self.send_text(json.dumps(obj, separators=(",", ":")))

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake and drop the transport."""
        if self.transport is not None and not self.transport.is_closing():
            self._write(8, code.to_bytes(2, "big"))
            self.transport.close()


async def connect(
    port: int,
    path: str,
    headers: Mapping[str, str] | None = None,
    on_message: OnMessage | None = None,
    tag: Any = None,
    timeout: float = 15.0,
    wait_ready: bool = True,
    host: str = "127.0.0.1",
) -> WSConn:
    """Open a connection and wait for the server's ``ready`` frame (or just the upgrade)."""
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(lambda: WSConn(host, port, path, headers, on_message, tag, wait_ready), host, port),
        timeout,
    )
    try:
        await asyncio.wait_for(asyncio.shield(conn.ready), timeout)
    except BaseException:
        conn.close()
        raise
    return conn
