"""The chat sockets: /ws/dm/<username>/ and /ws/rooms/<slug>/.

One base serves both kinds; the subclasses differ in who may connect, what
``ready`` says and room presence. Every frame is re-authorised before it acts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

from dm import access, selectors, services
from dm.models import Conversation
from social.realtime import limits, protocol
from social.realtime.consumers import Denied, RealtimeConsumer
from social.realtime.publish import group_send, group_send_many

T = TypeVar("T")
# A stored message: the service's result and the events that announce it.
Stored = tuple[services.SendResult, list[tuple[str, dict[str, Any]]]]

log = logging.getLogger(__name__)
# Leaves waiting out their grace period (the loop keeps only weak references to tasks).
_leaving: set[asyncio.Task[None]] = set()


class ConversationConsumer(RealtimeConsumer):
    """Messages, typing and read markers of one conversation."""

    frame_handlers: ClassVar[dict[str, str]] = {
        protocol.CLIENT_MESSAGE: "on_message",
        protocol.CLIENT_TYPING: "on_typing",
        protocol.CLIENT_READ: "on_read",
    }

    queued_frames: ClassVar[frozenset[str]] = frozenset({protocol.CLIENT_MESSAGE})

    conversation: Conversation
    # The task storing the outbox, while it runs, and the size of the batch it holds.
    storing: asyncio.Task[None] | None = None
    in_flight: int = 0
    # Users this socket's user has blocked: their frames are dropped (rooms).
    blocked: frozenset[int] = frozenset()

    # Hooks of the two kinds.

    def load(self) -> None:
        """Find and authorise the conversation (sync; raise access.AccessDenied)."""
        raise NotImplementedError

    def ready_frame(self, truncated: bool) -> Any:
        """The ``ready`` frame that ends the resume replay (sync); ``truncated``: more than
        RESUME_LIMIT were missed, the replay was the newest ones, so the client drops
        what it had (there may be a gap) and pages back."""
        raise NotImplementedError

    # RealtimeConsumer hooks.

    async def authorize(self) -> None:
        # Messages read from the socket and not yet stored (see on_message).
        self.outbox: list[tuple[str, str | None]] = []
        await self.guarded(self.load)
        self.group = services.conversation_group(self.conversation)

    def group_names(self) -> list[str]:
        return [self.group]

    async def start(self) -> None:
        if self.after is not None:
            replay, truncated = await database_sync_to_async(selectors.messages_after)(
                conversation_id=self.conversation.pk,
                after_id=self.after,
                limit=settings.REALTIME["RESUME_LIMIT"],
                hidden_senders=self.blocked,
            )
            for message in replay:
                await self.drained()
                await self.send_frame(protocol.message_frame(protocol.message_dict(message)))
                # Groups were joined before this read: drop the live copy of anything replayed.
                self.replayed_up_to = message.pk
        else:
            truncated = False
        await self.send_frame(await database_sync_to_async(self.ready_frame)(truncated))

    async def still_allowed(self) -> bool:
        return await database_sync_to_async(self.recheck)()

    def accepts_from(self, sender_id: int | None) -> bool:
        return sender_id not in self.blocked

    # Frames from the client.

    async def on_message(self, frame: dict[str, Any]) -> None:
        """Queue the message; ``store_outbox`` stores, publishes and acknowledges it.

        The socket reads its next frame meanwhile, so messages that arrive
        while a batch is being stored go together into the next one: one
        database hop and one publishing round trip for all of them, instead
        of a chain of round trips per message that caps a sender's rate.
        """
        self.outbox.append(protocol.parse_message(frame))
        if self.storing is None or self.storing.done():
            self.storing = asyncio.create_task(self.store_outbox())
        if len(self.outbox) + self.in_flight >= settings.REALTIME["PENDING_MESSAGES_PER_SOCKET"]:
            # Stop reading the socket until the backlog is stored (backpressure).
            await self.settle()

    async def settle(self) -> None:
        if self.storing is not None:
            # Shielded: a cancelled reader must not cancel storing what it already read.
            await asyncio.shield(self.storing)

    async def store_outbox(self) -> None:
        """Store, publish and answer queued messages in order, a batch per round.

        This socket is left out of the relay and gets its echo here, in the
        order it sent; ``settle`` makes any other answer wait for them.
        """
        while self.outbox:
            batch, self.outbox = self.outbox, []
            self.in_flight = len(batch)
            try:
                outcomes = await database_sync_to_async(self.store_messages, thread_sensitive=False)(batch)
                # Published from the event loop after the commits, so the
                # database thread never waits on Redis; each message's
                # conversation frame and (DM) inbox frame go out together.
                events = [event for outcome in outcomes if isinstance(outcome, tuple) for event in outcome[1]]
                delivered = iter(await group_send_many(events) if events else [])
            except Exception as error:
                log.exception("storing messages failed on %s", self.channel_name)
                outcomes, delivered = [error] * len(batch), iter([])
            for (_, client_id), outcome in zip(batch, outcomes, strict=False):
                if isinstance(outcome, Exception):
                    await self.answer_quietly(self.answer_failure(outcome, client_id))
                    continue
                result, message_events = outcome
                # Whether the conversation's frame (the first) went out.
                result.broadcast = [next(delivered) for _ in message_events][:1] == [True]
                await self.answer_quietly(self.acknowledge(result, message_events))
            self.in_flight = 0
            if outcomes and isinstance(outcomes[-1], Denied):
                # The socket is closing: what it sent after the refusal is not stored.
                self.outbox.clear()

    async def answer_quietly(self, answer: Awaitable[None]) -> None:
        """Send one answer of a batch; a socket closed meanwhile (the message is stored) must not stop the rest."""
        try:
            await answer
        except Exception:
            log.debug("could not answer on %s", self.channel_name, exc_info=True)

    async def acknowledge(self, result: services.SendResult, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Echo a message to its sender: the relayed frame, or the stored one with ``broadcast: false``."""
        if result.created and result.broadcast:
            await self.send(text_data=events[0][1]["text"])
            return
        # When the channel layer refused the broadcast the row is still stored, so
        # the sender gets its acknowledgement and the others get it on resume.
        echo = protocol.message_frame(protocol.message_dict(result.message), broadcast=not result.created)
        await self.send_frame(echo)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        """Tell the others, at most once per TYPING_INTERVAL_SECONDS per user and conversation."""
        # Shared by the user's every tab and server process (Redis when configured);
        # SET NX is atomic, so one wins.
        interval = settings.REALTIME["TYPING_INTERVAL_SECONDS"]
        if not await limits.first_within(f"typing:{self.conversation.pk}:{self.user_id}", interval):
            return
        await self.guarded(access.access_post, self.user, self.conversation)
        frame_out = protocol.typing_frame(protocol.user_dict(self.user))
        await group_send(self.group, protocol.relay_event(frame_out, exclude_user=self.user_id, sender=self.user_id))

    async def on_read(self, frame: dict[str, Any]) -> None:
        """Move this user's read marker forward (published by the service when it moved)."""
        message_id = protocol.parse_id(frame.get("message_id"), "message_id")
        await self.guarded(self.mark_read, message_id)

    # Sync work, run in the database thread.

    def store_messages(self, batch: list[tuple[str, str | None]]) -> list[Stored | Exception]:
        """Store a batch in order: per message its result and events, or why it failed.

        On PostgreSQL a batch is one statement. Elsewhere each message is its
        own; a refusal ends the batch (the socket closes) and another failure
        answers only its own message.
        """
        if len(batch) > 1 and services.stores_batches_in_one_statement():
            try:
                results = services.message_store_many(sender=self.user, conversation=self.conversation, items=batch)
            except services.PostingRefused:
                return [self.refusal()]
            except Exception as error:
                # The statement stored all of the batch or none of it: each
                # message is answered with the error, and a resend with its
                # client_id is answered from the store if it was stored.
                return [error] * len(batch)
            return [result if isinstance(result, Exception) else (result, self.events(result)) for result in results]
        outcomes: list[Stored | Exception] = []
        for body, client_id in batch:
            try:
                result = services.message_store(
                    sender=self.user, conversation=self.conversation, body=body, client_id=client_id
                )
            except services.PostingRefused:
                outcomes.append(self.refusal())
                break
            except Exception as error:
                outcomes.append(error)
            else:
                outcomes.append((result, self.events(result)))
        return outcomes

    def refusal(self) -> Denied:
        """Why the user may no longer post here (the store refused)."""
        try:
            access.access_post(self.user, self.conversation)
        except access.AccessDenied as denied:
            return Denied(denied.close_code, str(denied))
        return Denied(protocol.CLOSE_FORBIDDEN, "you may not post here")

    def events(self, result: services.SendResult) -> list[tuple[str, dict[str, Any]]]:
        """The events that announce a newly stored message (none for a resend)."""
        if not result.created:
            return []
        return services.message_events(
            message=result.message,
            conversation=self.conversation,
            exclude_channel=self.channel_name,
            inbox_unread=result.inbox_unread,
        )

    def mark_read(self, message_id: int) -> None:
        """Re-check access, then move the read marker."""
        access.access_post(self.user, self.conversation)
        services.read_mark(user=self.user, conversation=self.conversation, message_id=message_id)

    def recheck(self) -> bool:
        """Reload the blocked set; True while the user may still use the conversation."""
        self.blocked = selectors.blocked_ids(user_id=self.user_id)
        try:
            access.access_post(self.user, self.conversation)
        except access.AccessDenied:
            return False
        return True

    async def guarded(self, function: Callable[..., T], *args: Any) -> T:
        """Run sync DB work; an access refusal becomes Denied (close 4403/4404)."""
        try:
            # Not thread-sensitive: sockets' database work runs on a small pool in
            # parallel instead of queueing on one thread behind every other socket.
            return await database_sync_to_async(function, thread_sensitive=False)(*args)
        except access.AccessDenied as denied:
            raise Denied(denied.close_code, str(denied)) from None


class DirectConsumer(ConversationConsumer):
    """``/ws/dm/<username>/``: the pair group ``dm_<lo>_<hi>``."""

    def load(self) -> None:
        username = self.scope["url_route"]["kwargs"]["username"]
        self.conversation, self.peer = access.access_direct(self.user, username)

    def ready_frame(self, truncated: bool) -> protocol.DirectReadyFrame:
        return protocol.direct_ready_frame(
            conversation_id=self.conversation.pk,
            peer=protocol.user_dict(self.peer),
            read=selectors.read_markers(conversation_id=self.conversation.pk),
            truncated=truncated,
        )


class RoomConsumer(ConversationConsumer):
    """``/ws/rooms/<slug>/``: the room group, with presence across tabs and processes."""

    online: frozenset[int] = frozenset()  # who this socket's client was told is in the room
    # user id -> version of the newest join or leave this socket's view reflects.
    presence_seen: dict[int, int]

    def load(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        self.conversation = access.access_room_join(self.user, slug)
        self.blocked = selectors.blocked_ids(user_id=self.user_id)
        self.presence_seen = {}

    def ready_frame(self, truncated: bool) -> protocol.RoomReadyFrame:
        room = self.conversation
        # Versions first: an announcement decided between the two reads is then
        # newer than the version read, so it is not dropped for being old, and
        # the online check below drops it if the list already shows it.
        self.presence_seen = selectors.presence_versions(conversation_id=room.pk)
        online = selectors.room_online(conversation_id=room.pk, hidden_users=self.blocked)
        self.online = frozenset(user["id"] for user in online)
        return protocol.room_ready_frame(
            conversation_id=room.pk, room=protocol.room_dict(room), online=online, truncated=truncated
        )

    def wants(self, event: dict[str, Any]) -> bool:
        """Also drop a join or leave this socket's view of who is online already reflects.

        An announcement published just before this socket joined the group can
        still reach it after its ``ready`` listed the outcome, and one from
        another process can arrive after a newer one (a sweeper's ``leave``
        after the swept user's ``join``): the version drops the old one, so
        the client sees each user join once and leave once, in turn, ending
        in their real state.
        """
        if not super().wants(event):
            return False
        presence = event.get("presence")
        if presence is None:
            return True
        user_id = event["sender"]
        version = event.get("presence_version")
        if version is not None:
            if version <= self.presence_seen.get(user_id, 0):
                return False
            self.presence_seen[user_id] = version
        if (presence == "join") == (user_id in self.online):
            return False
        self.online ^= {user_id}
        return True

    async def start(self) -> None:
        first = await database_sync_to_async(services.presence_enter)(
            conversation_id=self.conversation.pk, user_id=self.user_id, channel_name=self.channel_name
        )
        await super().start()
        if first is not None:
            await self.announce(protocol.join_frame, version=first)

    async def heartbeat(self) -> None:
        """Keep this socket's presence row fresh; announce users whose server process died."""
        beat = await database_sync_to_async(services.presence_refresh)(
            conversation_id=self.conversation.pk, user_id=self.user_id, channel_name=self.channel_name
        )
        if beat.back is not None:
            # Every socket in the room, this user's own included, was told they left.
            await self.announce(protocol.join_frame, version=beat.back, to_self=True)
        for user, version in beat.gone:
            event = protocol.relay_event(
                protocol.leave_frame(user), sender=user["id"], presence="leave", presence_version=version
            )
            await group_send(self.group, event)

    async def stop(self) -> None:
        last = await database_sync_to_async(services.presence_exit)(
            conversation_id=self.conversation.pk, user_id=self.user_id, channel_name=self.channel_name
        )
        if last:
            # Outlives the socket; if this process dies first, a heartbeat
            # sweep elsewhere announces the overdue leave.
            task = asyncio.create_task(self.leave_after_grace())
            _leaving.add(task)
            task.add_done_callback(_leaving.discard)

    async def leave_after_grace(self) -> None:
        """Announce the leave once the grace period is over, unless the user is back by then."""
        await asyncio.sleep(settings.REALTIME["PRESENCE_LEAVE_GRACE_MS"] / 1000)
        try:
            version = await database_sync_to_async(services.presence_leave_due)(
                conversation_id=self.conversation.pk, user_id=self.user_id
            )
            if version is not None:
                await self.announce(protocol.leave_frame, version=version)
        except Exception:
            log.warning("announcing the leave of %s failed; the sweep will", self.user_id, exc_info=True)

    async def announce(
        self, build: Callable[[dict[str, Any]], dict[str, Any]], *, version: int, to_self: bool = False
    ) -> None:
        """Send this user's join or leave to the room's other sockets (``to_self``: the user's own too)."""
        frame = build(protocol.user_dict(self.user))
        exclude_user = None if to_self else self.user_id
        event = protocol.relay_event(
            frame, exclude_user=exclude_user, sender=self.user_id, presence=frame["type"], presence_version=version
        )
        await group_send(self.group, event)
