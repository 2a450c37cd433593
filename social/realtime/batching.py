"""A socket's queue of frames handled in batches and answered in the order they came.

A chat socket that waited for each message to be stored, published and
acknowledged before reading the next frame would cap a sender at one chain
of round trips per message. Instead the frames go into a ``Batcher``: one task
hands what has queued up to ``handle`` in one call (one database hop, one
publish) while the socket reads on, then answers each frame in order. When
``limit`` frames are pending the socket stops reading until they are handled
(backpressure). A refusal (``stop`` says which outcome is one) ends the queue:
what was read after it is not handled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

log = logging.getLogger(__name__)


class Batcher(Generic[Item, Outcome]):
    """Items handled a batch at a time by one task, each answered in order."""

    def __init__(
        self,
        *,
        handle: Callable[[list[Item]], Awaitable[list[Outcome]]],
        answer: Callable[[Item, Outcome], Awaitable[None]],
        stop: Callable[[Outcome], bool],
        limit: int,
    ) -> None:
        self.handle = handle
        self.answer = answer
        self.stop = stop
        self.limit = limit
        self.queue: list[Item] = []
        self.in_flight = 0
        self.task: asyncio.Task[None] | None = None

    async def put(self, item: Item) -> None:
        """Queue one item; returns at once unless ``limit`` items are pending."""
        self.queue.append(item)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.run())
        if len(self.queue) + self.in_flight >= self.limit:
            await self.settle()

    async def settle(self) -> None:
        """Wait until everything queued has been handled and answered."""
        if self.task is not None:
            # Shielded: a cancelled reader must not cancel handling what it already read.
            await asyncio.shield(self.task)

    async def run(self) -> None:
        """Handle and answer batches until the queue is empty."""
        while self.queue:
            batch, self.queue = self.queue, []
            self.in_flight = len(batch)
            outcomes = await self.handle(batch)
            for item, outcome in zip(batch, outcomes, strict=False):
                try:
                    await self.answer(item, outcome)
                except Exception:
                    # The socket closed meanwhile; the rest still get their answers.
                    log.debug("could not answer a batched frame", exc_info=True)
            self.in_flight = 0
            if outcomes and self.stop(outcomes[-1]):
                self.queue.clear()
