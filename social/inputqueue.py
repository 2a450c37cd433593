"""A lighter input queue for each of daphne's connections.

daphne gives every connection an ``asyncio.Queue`` as the application's
``receive`` (``Server.create_application``). An ``asyncio.Queue`` is four
``collections.deque`` objects (items, getters, putters, and its ``Event``'s
waiters) of ~760 bytes each, ~3 KiB for every idle WebSocket, nearly all of
it for features daphne never uses (bounded size, ``put`` waiting, ``join``).
``InputQueue`` keeps what daphne and an ASGI application use: ``put_nowait``,
``get`` (safe to cancel: a message is never lost), ``qsize`` and ``empty``.

``Server.create_application`` is daphne 4.2.3's, with this queue. It is used
only when the installed daphne is the version it was copied from
(``applies``); with another one daphne's own runs, and
tests/social/test_inputqueue.py fails until this module is checked against it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from importlib.metadata import version
from typing import Any

DAPHNE_VERSION = "4.2.3"


class InputQueue:
    """Unbounded FIFO of ASGI messages for one connection, awaited by its application."""

    __slots__ = ("getters", "items")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.getters: list[asyncio.Future[None]] = []

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items

    def put_nowait(self, item: Any) -> None:
        """Add a message and wake the oldest waiting ``get``."""
        self.items.append(item)
        self.wake_next()

    def wake_next(self) -> None:
        while self.getters:
            getter = self.getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> Any:
        """The oldest message, waiting for one if need be."""
        while not self.items:
            getter = asyncio.get_running_loop().create_future()
            self.getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if getter in self.getters:
                    self.getters.remove(getter)
                if self.items and not getter.cancelled():
                    # Woken, then cancelled before it could take the message: pass the wake on.
                    self.wake_next()
                raise
        return self.items.pop(0)


def applies() -> bool:
    """Whether the installed daphne is the one ``create_application`` was copied from."""
    return version("daphne") == DAPHNE_VERSION


def create_application(server: Any, protocol: Any, scope: dict[str, Any]) -> InputQueue | None:
    """daphne's ``Server.create_application`` (4.2.3), with an ``InputQueue``."""
    assert "application_instance" not in server.connections[protocol]
    input_queue = InputQueue()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = server.application(
        scope=scope,
        receive=input_queue.get,
        send=partial(server.handle_reply, protocol),
    )
    if protocol not in server.connections:
        return None
    server.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance,
        loop=asyncio.get_event_loop(),
    )
    return input_queue
