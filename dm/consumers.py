"""The chat sockets: /ws/dm/<username>/ and /ws/rooms/<slug>/.

One base serves both kinds; the subclasses differ in who may connect, what
``ready`` says and room presence. Every frame is re-authorised before it acts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

from dm import access, changes, selectors, services
from dm.group_commit import GroupCommit
from dm.models import Conversation
from dm.presence import PresenceView
from social.realtime import protocol
from social.realtime.batching import Batcher
from social.realtime.consumers import Denied, RealtimeConsumer

T = TypeVar("T")
Item = protocol.Draft


class ConversationConsumer(RealtimeConsumer):
    """Messages (and their edits, deletes and reactions), typing and read markers of one conversation."""

    frame_handlers: ClassVar[dict[str, str]] = {
        protocol.CLIENT_MESSAGE: "on_message",
        protocol.CLIENT_TYPING: "on_typing",
        protocol.CLIENT_READ: "on_read",
        protocol.CLIENT_EDIT: "on_change",
        protocol.CLIENT_DELETE: "on_change",
        protocol.CLIENT_REACT: "on_change",
    }
    resume_cursors: ClassVar[tuple[str, ...]] = ("after", "since")

    queued_frames: ClassVar[frozenset[str]] = frozenset({protocol.CLIENT_MESSAGE})

    conversation: Conversation
    # Message frames read and not yet stored, stored and answered in batches.
    outbox: Batcher[Item, services.SendResult | Exception] | None = None
    # Users this socket's user has blocked: their frames are dropped (rooms).
    blocked: frozenset[int] = frozenset()
    # Whether ready_frame runs on the one shared thread, in order with the other sockets'
    # presence work (rooms); else on the pool, so that a restart's reconnects build theirs in parallel.
    ready_in_order: ClassVar[bool] = False

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
        self.outbox = Batcher(
            handle=self.send_messages,
            answer=self.answer_message,
            stop=lambda outcome: isinstance(outcome, services.PostingRefused),
            limit=settings.REALTIME["PENDING_MESSAGES_PER_SOCKET"],
        )
        await self.guarded(self.load)
        self.group = services.conversation_group(self.conversation)

    def group_names(self) -> list[str]:
        return [self.group]

    async def start(self) -> None:
        """Replay what the client missed (``since`` wins over ``after``), then ``ready``."""
        truncated = False
        if self.cursors["since"] is not None:
            truncated = await self.replay_since(self.cursors["since"])
        elif self.cursors["after"] is not None:
            # Not thread-sensitive, as guarded(): a restart's reconnects replay in parallel.
            replay, truncated = await database_sync_to_async(selectors.messages_after, thread_sensitive=False)(
                conversation_id=self.conversation.pk,
                after_id=self.cursors["after"],
                limit=settings.REALTIME["RESUME_LIMIT"],
                hidden_senders=self.blocked,
            )
            for message in replay:
                await self.drained()
                await self.send_frame(protocol.message_frame(protocol.message_dict(message)))
                # Groups were joined before this read: drop the live copy of anything replayed.
                self.replayed_up_to = message.pk
        ready = database_sync_to_async(self.ready_frame, thread_sensitive=self.ready_in_order)
        await self.send_frame(await ready(truncated))

    async def replay_since(self, since: int) -> bool:
        """Every message changed or created after version ``since``, once, in its current state and
        in version order: ``message`` when the client cannot have it (its id, which is its first
        version, is past ``since``), else ``message_update``. True when it was cut to RESUME_LIMIT."""
        # Not thread-sensitive, as the ``after`` replay: a restart's reconnects replay in parallel.
        replay, truncated = await database_sync_to_async(selectors.messages_since, thread_sensitive=False)(
            conversation_id=self.conversation.pk,
            since_version=since,
            limit=settings.REALTIME["RESUME_LIMIT"],
            hidden_senders=self.blocked,
        )
        if not replay and since > 0:
            newest = await database_sync_to_async(selectors.newest_version, thread_sensitive=False)(
                conversation_id=self.conversation.pk
            )
            if since > newest:
                await self.send_error(
                    protocol.INVALID, f"since is past this conversation's newest version ({newest}); reload it"
                )
        for message in replay:
            await self.drained()
            payload = protocol.message_dict(message)
            frame = protocol.message_frame(payload) if message.pk > since else protocol.message_update_frame(payload)
            await self.send_frame(frame)
            # Numbers commit in order within a conversation (dm.versions): every
            # live copy at or below the newest replayed version was replayed.
            self.replayed_up_to = self.replayed_version = message.version
        return truncated

    async def still_allowed(self) -> bool:
        return await database_sync_to_async(self.recheck)()

    def accepts_from(self, sender_id: int | None) -> bool:
        return sender_id not in self.blocked

    # Frames from the client.

    async def on_message(self, frame: dict[str, Any]) -> None:
        """Queue the message: the socket reads on while a batch is stored (see social.realtime.batching)."""
        await self.outbox.put(protocol.parse_message(frame))

    async def on_change(self, frame: dict[str, Any]) -> None:
        """An edit, delete or react; the service publishes the ``message_update``, refusals keep the socket open."""
        await self.guarded(self.change_message, protocol.parse_change(frame))

    async def settle(self) -> None:
        if self.outbox is not None:
            await self.outbox.settle()

    async def send_messages(self, batch: list[Item]) -> list[services.SendResult | Exception]:
        """Store and publish a batch (the service does both; this socket echoes by itself)."""
        return await services.messages_send(
            sender=self.user, conversation=self.conversation, items=batch, exclude_channel=self.channel_name
        )

    async def answer_message(self, item: Item, outcome: services.SendResult | Exception) -> None:
        """Echo a stored message to its sender, or say why it was not stored (a refusal closes)."""
        client_id = item.client_id
        if isinstance(outcome, services.PostingRefused):
            await self.answer_failure(Denied(outcome.close_code, str(outcome)), client_id)
        elif isinstance(outcome, Exception):
            await self.answer_failure(outcome, client_id)
        elif outcome.created and outcome.broadcast:
            await self.send(text_data=outcome.events[0][1]["text"])
        else:
            # A resend, or a broadcast the channel layer refused (the row is
            # stored: the others get it on resume): the echo comes from the store.
            message = protocol.message_dict(outcome.message)
            await self.send_frame(protocol.message_frame(message, broadcast=not outcome.created))

    async def on_typing(self, frame: dict[str, Any]) -> None:
        """Tell the others, at most once per TYPING_INTERVAL_SECONDS (extra frames are dropped silently)."""
        if not await services.typing_due(user=self.user, conversation=self.conversation):
            return
        await self.guarded(access.access_post, self.user, self.conversation)
        await services.typing_publish(user=self.user, conversation=self.conversation)

    async def on_read(self, frame: dict[str, Any]) -> None:
        """Move this user's read marker forward (published by the service when it moved)."""
        message_id = protocol.parse_id(frame.get("message_id"), "message_id")
        await self.guarded(self.mark_read, message_id)

    # Sync work, run in the database thread.

    def change_message(self, change: protocol.Change) -> None:
        """Apply the change; the service checks access to the conversation (under its lock) and the message."""
        try:
            changes.message_change(user=self.user, conversation=self.conversation, change=change)
        except services.PostingRefused as refused:
            raise Denied(refused.close_code, str(refused)) from None

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

    # Who this socket's client was told is online (see dm.presence).
    presence: PresenceView
    # After this socket's presence entry, on the shared thread: a room's ready snapshot and the
    # join announcements of sockets opening beside it stay in one order.
    ready_in_order = True

    def load(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        self.conversation = access.access_room_join(self.user, slug)
        self.blocked = selectors.blocked_ids(user_id=self.user_id)
        self.presence = PresenceView()

    def ready_frame(self, truncated: bool) -> protocol.RoomReadyFrame:
        room = self.conversation
        versions = selectors.presence_versions(conversation_id=room.pk)
        online = selectors.room_online(conversation_id=room.pk, hidden_users=self.blocked)
        self.presence.reset(online=frozenset(user["id"] for user in online), versions=versions)
        return protocol.room_ready_frame(
            conversation_id=room.pk, room=protocol.room_dict(room), online=online, truncated=truncated
        )

    async def send_messages(self, batch: list[Item]) -> list[services.SendResult | Exception]:
        """Store and publish a batch together with the other sockets of the room in this process."""
        if not settings.REALTIME["GROUP_COMMIT"]:
            return await super().send_messages(batch)
        submission = services.Submission(sender=self.user, drafts=batch, exclude_channel=self.channel_name)
        return await GroupCommit.for_room(self.conversation).send(submission)

    def wants(self, event: dict[str, Any]) -> bool:
        """Also drop a join or leave that is no news to this socket's client."""
        if not super().wants(event):
            return False
        presence = event.get("presence")
        if presence is None:
            return True
        return self.presence.is_news(presence=presence, user_id=event["sender"], version=event.get("presence_version"))

    async def start(self) -> None:
        await services.presence_joined(conversation=self.conversation, user=self.user, channel_name=self.channel_name)
        await super().start()

    async def heartbeat(self) -> None:
        """Keep this socket's presence fresh; the service announces users whose server process died."""
        await services.presence_beat(conversation=self.conversation, user=self.user, channel_name=self.channel_name)

    async def stop(self) -> None:
        await services.presence_left(conversation=self.conversation, user=self.user, channel_name=self.channel_name)
