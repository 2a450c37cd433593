"""One WebSocket frame built once and written straight to many of daphne's sockets.

A room message reaches every local member with the same bytes: a server's
frames are never masked, so the frame can be built once per group message.
The ASGI send costs, per socket, an asyncio task, autobahn framing the payload
again, and Twisted buffering the bytes and registering the socket with the
event loop until a later iteration writes them (two loop registrations and a
callback chain per delivery). ``DirectWriter`` writes the frame to the socket
at once when nothing is buffered ahead of it, as the ``websockets`` library
does, and otherwise appends it to Twisted's buffer behind what is there, so
frames keep their order with everything else the socket sends.

It applies only to daphne's WebSocket protocol over plain TCP as daphne
configures it (no per-message compression, no masking, no fragmentation);
anywhere else ``direct_writer`` returns None and the caller uses the ASGI send.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

_TEXT_FIN = 0x81
# (text, its frame): one tuple, so the pair is always replaced together.
_last: tuple[str | None, bytes] = (None, b"")


def text_frame(text: str) -> bytes:
    """The unmasked, unfragmented WebSocket text frame carrying ``text``.

    The relay hands every local socket the same decoded string object, so a
    one-entry cache keyed on identity builds each group message's frame once.
    """
    global _last
    last_text, last_frame = _last
    if text is last_text:
        return last_frame
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _TEXT_FIN, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _TEXT_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", _TEXT_FIN, 127, size)
    frame = header + payload
    _last = (text, frame)
    return frame


class DirectWriter:
    """Writes pre-built frames to one daphne WebSocket connection."""

    __slots__ = ("protocol", "transport", "limit", "held", "lost")

    def __init__(self, protocol: Any, transport: Any) -> None:
        self.protocol = protocol
        self.transport = transport
        self.limit = protocol.maxMessagePayloadSize
        # Frames held back inside ``coalesced()``, written together at its end.
        self.held: list[bytes] | None = None
        # The socket failed a write: the connection is gone.
        self.lost = False

    def write(self, frame: bytes) -> bool:
        """Write one frame; False (nothing written) when the connection is not open
        for it, after which the caller must use the ASGI send for good, so that
        no frame it sends later can overtake one still queued there."""
        protocol = self.protocol
        transport = self.transport
        if (
            self.lost
            or protocol.state != protocol.STATE_OPEN
            or protocol.send_queue
            or not transport.connected
            or transport.disconnecting
            or (self.limit and len(frame) > self.limit)
        ):
            return False
        holding = _local.holding
        if holding is not None:
            if self.held is None:
                self.held = [frame]
                holding.append(self)
            else:
                self.held.append(frame)
            return True
        self.send(frame)
        return True

    def send(self, data: bytes) -> None:
        """Hand bytes to the socket now, or queue them behind bytes still buffered."""
        transport = self.transport
        if transport.dataBuffer or transport._tempDataLen:
            # Bytes are waiting for the socket to drain: queue behind them.
            transport.write(data)
            return
        sent = transport.writeSomeData(data)
        if isinstance(sent, BaseException):
            self.lost = True
        elif sent < len(data):
            transport.write(data[sent:])

    def release(self) -> None:
        """Write the frames held back, in one piece."""
        held, self.held = self.held, None
        if held:
            self.send(held[0] if len(held) == 1 else b"".join(held))


class _Holding(threading.local):
    # Writers holding frames while ``coalesced()`` runs in this thread; None outside it.
    # Per thread: a loop in another thread (sync code publishing through
    # ``async_to_sync``) must not make this loop's writes wait.
    holding: list[DirectWriter] | None = None


_local = _Holding()


@contextlib.contextmanager
def coalesced() -> Iterator[None]:
    """Within the block, each socket's frames are held and written in one piece at its end.

    The pub/sub reader delivers a batch of a group's messages inside it, so a
    socket gets k frames with one system call instead of k. Nothing else runs
    on the event loop meanwhile, so no other write can come between.
    """
    if _local.holding is not None:
        yield
        return
    _local.holding = []
    try:
        yield
    finally:
        writers, _local.holding = _local.holding, None
        for writer in writers:
            try:
                writer.release()
            except Exception:
                # One broken connection must not keep the others' frames held.
                writer.held, writer.lost = None, True
                log.exception("writing held frames failed")


def daphne_connection(send: Callable[..., Any]) -> tuple[Any, Any] | None:
    """(daphne's WebSocket protocol, its TCP transport) behind an ASGI ``send``, or None.

    daphne hands each application ``partial(server.handle_reply, protocol)``.
    Channels' session middleware wraps it in a method that acts only on HTTP
    responses and passes ``websocket.send`` straight through, so it is looked
    through. Anything else (a test communicator, another server, TLS
    terminated in the process) gets None.
    """
    ws_protocol = sys.modules.get("daphne.ws_protocol")
    tcp = sys.modules.get("twisted.internet.tcp")
    if ws_protocol is None or tcp is None:
        return None
    session_wrapper = getattr(sys.modules.get("channels.sessions"), "InstanceSessionWrapper", None)
    while session_wrapper is not None and isinstance(getattr(send, "__self__", None), session_wrapper):
        send = send.__self__.real_send
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if not isinstance(protocol, ws_protocol.WebSocketProtocol):
        return None
    transport = protocol.transport
    if not isinstance(transport, tcp.Connection) or not hasattr(transport, "_tempDataLen"):
        return None
    return protocol, transport


def buffered_bytes(transport: Any) -> int:
    """Bytes Twisted holds for this connection that the peer has not taken yet.

    Every frame to the socket lands in this one buffer, whether it came
    through the ASGI send or a ``DirectWriter``; a peer that stops reading
    makes it grow until the consumer closes the socket (``WS_MAX_BUFFERED_BYTES``).
    """
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def direct_writer(send: Callable[..., Any]) -> DirectWriter | None:
    """A writer for the daphne connection behind an ASGI ``send``, or None
    (not daphne, or a negotiated extension, masking or fragmentation)."""
    connection = daphne_connection(send)
    if connection is None:
        return None
    protocol, transport = connection
    if (
        protocol.state != protocol.STATE_OPEN
        or protocol._perMessageCompress is not None
        or protocol.maskServerFrames
        or protocol.autoFragmentSize
    ):
        return None
    return DirectWriter(protocol, transport)
