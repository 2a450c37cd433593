"""One task per socket: the layer hands a consumer its messages instead of a receive task waiting for them.

Channels' ``AsyncConsumer.__call__`` runs ``await_many_dispatch``, which keeps,
for every socket and for its whole life, a task waiting on the ASGI receive, a
task waiting on ``channel_layer.receive`` (with the layer's per-channel
``asyncio.Queue``) and the ``asyncio.wait`` between them. With thousands of
idle sockets that is most of what a socket costs beyond daphne's own objects.

``serve`` does what ``AsyncConsumer.__call__`` does (scope, layer, channel
name, ``base_send``, messages to ``dispatch`` one at a time until
``StopConsumer``), but the layer delivers the channel's messages into the
socket's ``Inbox`` (``layer.open_inbox``) and the consumer's own task waits on
one future that either side wakes. The ASGI receive still has its own
awaitable, as a server's receive can only be awaited. Order is as before: each
source's messages in their order, a client message first when both are ready.

Only layers that offer ``open_inbox``/``close_inbox`` (the app's in-memory and
pub/sub layers, social/realtime/layers.py) take this path; for any other layer
(the core ``RedisChannelLayer``), and with any Channels or channels-redis other
than the releases it mirrors (``MIRRORED_VERSIONS``), ``supported`` is False and
the consumer runs Channels' own ``__call__``. ``tests/realtime/test_inbox.py`` pins the Channels
and channels-redis code this mirrors and fails when a new version changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from channels.exceptions import StopConsumer

log = logging.getLogger(__name__)

# The releases whose code ``serve`` and the layers' inboxes mirror; any other runs Channels' own path.
MIRRORED_VERSIONS = {"channels": "4.3.2", "channels-redis": "4.3.0"}


class Inbox:
    """A socket's channel-layer messages, put by the layer, taken by the socket's task.

    ``put_nowait`` is what the pub/sub layer calls on a channel's queue, so the
    inbox stands in that queue's place; messages stay as the layer put them
    (pub/sub: serialised) until the socket takes them (``decode``).
    """

    __slots__ = ("decode", "loop", "messages", "waiter")

    def __init__(self) -> None:
        # Made at the first message: most sockets' inboxes stay empty (relays go straight to the socket).
        self.messages: deque[Any] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.decode: Callable[[Any], dict[str, Any]] | None = None
        self.loop = asyncio.get_running_loop()

    def __len__(self) -> int:
        return len(self.messages) if self.messages is not None else 0

    def put_nowait(self, message: Any) -> None:
        """Add a message for the socket and wake its task."""
        if self.messages is None:
            self.messages = deque()
        self.messages.append(message)
        self.wake()

    def put_threadsafe(self, message: Any) -> None:
        """``put_nowait`` from any thread (sync code publishing through its own event loop)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.put_nowait(message)
        else:
            self.loop.call_soon_threadsafe(self.put_nowait, message)

    def take(self) -> dict[str, Any] | None:
        """The oldest message, decoded (None when there is none)."""
        if not self.messages:
            return None
        message = self.messages.popleft()
        return self.decode(message) if self.decode is not None else message

    def wake(self, _: Any = None) -> None:
        """Wake the socket's task if it waits (also the ASGI receive's done callback)."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self) -> None:
        """Until ``wake``."""
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


@functools.cache
def mirrored_versions_installed() -> bool:
    """Whether the installed Channels and channels-redis are the releases this module mirrors (logged once when not)."""
    installed = {name: version(name) for name in MIRRORED_VERSIONS}
    if installed != MIRRORED_VERSIONS:
        log.warning("%s installed, inboxes mirror %s: sockets run Channels' own loop", installed, MIRRORED_VERSIONS)
        return False
    return True


def supported(layer: Any) -> bool:
    """Whether the layer delivers into inboxes (else: Channels' own ``__call__``)."""
    return layer is not None and callable(getattr(layer, "open_inbox", None)) and mirrored_versions_installed()


def next_message(receive: Any) -> asyncio.Future[dict[str, Any]]:
    """A future of the client's next message: the one ``receive`` already awaits when it has one
    (``HandshakeAdmission``'s replaying receive), else a task awaiting ``receive()``."""
    ahead = getattr(receive, "ahead", None)
    future = ahead() if ahead is not None else None
    return future if future is not None else asyncio.ensure_future(receive())


async def serve(consumer: Any, layer: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Run ``consumer`` on one task (module docstring): what ``AsyncConsumer.__call__`` does."""
    consumer.scope = scope
    consumer.channel_layer = layer
    consumer.channel_name = await layer.new_channel()
    consumer.base_send = send
    inbox = Inbox()
    layer.open_inbox(consumer.channel_name, inbox)
    incoming: asyncio.Future[dict[str, Any]] | None = None
    try:
        incoming = next_message(receive)
        incoming.add_done_callback(inbox.wake)
        while True:
            if incoming.done():
                message = incoming.result()
                incoming = None
                await consumer.dispatch(message)
                incoming = next_message(receive)
                incoming.add_done_callback(inbox.wake)
            elif (event := inbox.take()) is not None:
                await consumer.dispatch(event)
            else:
                await inbox.wait()
    except StopConsumer:
        pass
    finally:
        if incoming is not None and not incoming.done():
            incoming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await incoming
        await layer.close_inbox(consumer.channel_name)
