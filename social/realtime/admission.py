"""Admission control for WebSocket handshakes: a restart's reconnect storm is served, not drowned.

After a server restart every open tab reconnects within a second or two. Each
handshake costs database and Redis round trips (session, user, registry,
groups, the ``ready`` queries), and daphne drops a handshake the app has not
accepted within its connect timeout (``social.serve.HANDSHAKE_TIMEOUT``). With
thousands started at once, every one of them progressed a little, most were
dropped half done, their clients came back, and the process did nothing but
wasted work (docs/benchmarks.md, reconnect storm: congestive collapse).

So at most ``HANDSHAKES_IN_FLIGHT`` handshakes of a process do their work at
once, the others wait their turn in arrival order, and one that has waited
``HANDSHAKE_PATIENCE_MS`` (too long to finish before daphne's timeout) is
refused before any work: the upgrade is answered with HTTP 403 at once, and the
client backs off (socket.js: a failed handshake is a close 1006) and comes back
later, when the process has room. A handshake's slot is released when its
socket is live (``ready`` sent) or refused, when it fails, or when it waits on a
client that does not read its replay. A client that goes away while it waits
(a closed tab) is forgotten without any work.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import Any

from django.conf import settings

# The scope key under which the consumer finds the release of its handshake slot.
SCOPE_KEY = "handshake_done"

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate() -> asyncio.Semaphore:
    """This event loop's handshake slots (tests run several loops)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(settings.REALTIME["HANDSHAKES_IN_FLIGHT"])
    return gate


async def admitted() -> Callable[[], None] | None:
    """Wait for a handshake slot: its release (idempotent), or None when the wait was too long."""
    gate = _gate()
    try:
        await asyncio.wait_for(gate.acquire(), settings.REALTIME["HANDSHAKE_PATIENCE_MS"] / 1000)
    except TimeoutError:
        return None
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            gate.release()

    return release


def handshake_done(scope: dict[str, Any]) -> None:
    """Give the handshake's slot back (idempotent; nothing outside ``HandshakeAdmission``)."""
    release = scope.get(SCOPE_KEY)
    if release is not None:
        release()


class HandshakeAdmission:
    """ASGI middleware for WebSocket scopes: the inner application runs once admitted (see module docstring)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return None
        waiting = asyncio.ensure_future(admitted())
        # The client's next message can only be its disconnect: it left while waiting.
        left = asyncio.ensure_future(receive())
        await asyncio.wait({waiting, left}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
        release = None
        with contextlib.suppress(asyncio.CancelledError):
            release = await waiting
        if left.done():
            if release is not None:
                release()
            return None
        if release is None:
            left.cancel()
            # Before accept, daphne answers this with HTTP 403: nothing was done for it.
            await send({"type": "websocket.close"})
            return None
        try:
            return await self.inner({**scope, SCOPE_KEY: release}, _Replaying(connect, left, receive), send)
        finally:
            left.cancel()
            release()


class _Replaying:
    """``receive`` for the inner application: the connect message read here, then the
    message already being awaited here, then the rest."""

    def __init__(self, connect: dict[str, Any], pending: asyncio.Future[dict[str, Any]], receive: Any) -> None:
        self.connect: dict[str, Any] | None = connect
        self.pending: asyncio.Future[dict[str, Any]] | None = pending
        self.receive = receive

    def ahead(self) -> asyncio.Future[dict[str, Any]] | None:
        """Once the connect message was read: the future of the message already being awaited here,
        which the caller may await instead of ``self()`` (one task less per idle socket); else None."""
        if self.connect is not None or self.pending is None:
            return None
        pending, self.pending = self.pending, None
        return pending

    async def __call__(self) -> dict[str, Any]:
        if self.connect is not None:
            message, self.connect = self.connect, None
            return message
        if self.pending is not None:
            pending, self.pending = self.pending, None
            return await pending
        return await self.receive()
