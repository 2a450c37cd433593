"""Group commit: the messages of all of a room's sockets in this process, stored and published together.

A busy room has many senders, each sending a few messages a second, so each
socket's own batch (``social.realtime.batching``) is one message, and every
message paid its own insert, its own conversation lock and its own publish,
which every member socket then received as a write of its own. Instead the
room's sockets in one process hand their batches to the room's
``GroupCommit``: while one tick is being stored, the batches that arrive
gather, and go together as one statement (``services.room_messages_store``)
and one publish, which each member socket receives in one write.

Nothing waits on a timer: a quiet room stores a lone message at once, and a
tick is as long as the previous one took. Each socket waits for its own
batch's outcomes before it hands over its next, so its echoes keep its order;
within a tick the statement numbers messages in the order they arrived, and a
sender who may not post is refused without touching the others.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from dm import services
from dm.models import Conversation

log = logging.getLogger(__name__)

# Drafts stored by one statement at most; more wait for the next tick.
TICK_ITEMS = 500

_Outcomes = list[services.SendResult | Exception]


class GroupCommit:
    """The group commit of one room in this process (``for_room``)."""

    # Per event loop (tests run several), per room: the rooms with batches waiting or being stored.
    _active: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, GroupCommit]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.pending: list[tuple[services.Submission, asyncio.Future[_Outcomes]]] = []
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def for_room(cls, conversation: Conversation) -> GroupCommit:
        """The room's group commit in this process (made on first use, dropped when idle)."""
        rooms = cls._active.setdefault(asyncio.get_running_loop(), {})
        commit = rooms.get(conversation.pk)
        if commit is None:
            commit = rooms[conversation.pk] = cls(conversation)
        return commit

    async def send(self, submission: services.Submission) -> _Outcomes:
        """Store and publish one socket's batch with whatever else is waiting: its outcomes, in order."""
        future: asyncio.Future[_Outcomes] = asyncio.get_running_loop().create_future()
        self.pending.append((submission, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.run())
        return await future

    async def run(self) -> None:
        """Store ticks until nothing waits, then leave the registry."""
        tick: list[tuple[services.Submission, asyncio.Future[_Outcomes]]] = []
        try:
            while self.pending:
                tick = self._next_tick()
                submissions = [submission for submission, _ in tick]
                try:
                    outcomes = await services.room_messages_send(self.conversation, submissions)
                except Exception as error:
                    log.exception("group commit of %d batches failed", len(tick))
                    outcomes = [[error] * len(submission.drafts) for submission in submissions]
                for (_, future), outcome in zip(tick, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            # Cancelled (the process is shutting down): no socket may wait forever
            # for an answer, and what was stored is on record for resumes.
            for _, future in [*tick, *self.pending]:
                if not future.done():
                    future.set_exception(RuntimeError("the group commit stopped"))
            self.pending = []
            rooms = self._active.get(asyncio.get_running_loop(), {})
            if rooms.get(self.conversation.pk) is self:
                del rooms[self.conversation.pk]

    def _next_tick(self) -> list[tuple[services.Submission, asyncio.Future[_Outcomes]]]:
        """The waiting batches, oldest first, up to TICK_ITEMS drafts (always at least one batch)."""
        count, size = 0, 0
        for submission, _ in self.pending:
            if count and size + len(submission.drafts) > TICK_ITEMS:
                break
            count, size = count + 1, size + len(submission.drafts)
        tick, self.pending = self.pending[:count], self.pending[count:]
        return tick
