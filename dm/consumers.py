"""The chat sockets: /ws/dm/<username>/ and /ws/rooms/<slug>/.

One base serves both kinds; the subclasses differ in who may connect, what
``ready`` says and room presence. Every frame is re-authorised before it acts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

from dm import access, selectors, services
from dm.models import Conversation
from social.realtime import limits, protocol
from social.realtime.consumers import Denied, RealtimeConsumer
from social.realtime.publish import group_send, group_send_many

T = TypeVar("T")


class ConversationConsumer(RealtimeConsumer):
    """Messages, typing and read markers of one conversation."""

    frame_handlers: ClassVar[dict[str, str]] = {
        protocol.CLIENT_MESSAGE: "on_message",
        protocol.CLIENT_TYPING: "on_typing",
        protocol.CLIENT_READ: "on_read",
    }

    conversation: Conversation
    # Users this socket's user has blocked: their frames are dropped (rooms).
    blocked: frozenset[int] = frozenset()

    # Hooks of the two kinds.

    def load(self) -> None:
        """Find and authorise the conversation (sync; raise access.AccessDenied)."""
        raise NotImplementedError

    def ready_frame(self) -> dict[str, Any]:
        """The ``ready`` frame that ends the resume replay (sync)."""
        raise NotImplementedError

    # RealtimeConsumer hooks.

    async def authorize(self) -> None:
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
                await self.send_frame(protocol.message_frame(protocol.message_dict(message)))
                # Groups were joined before this read: drop the live copy of anything replayed.
                self.replayed_up_to = message.pk
        else:
            truncated = False
        ready = await database_sync_to_async(self.ready_frame)()
        if truncated:
            # More than RESUME_LIMIT were missed: the replay is the newest ones,
            # so the client drops what it had (there may be a gap) and pages back.
            ready["truncated"] = True
        await self.send_frame(ready)

    async def still_allowed(self) -> bool:
        return await database_sync_to_async(self.recheck)()

    def accepts_from(self, sender_id: int | None) -> bool:
        return sender_id not in self.blocked

    # Frames from the client.

    async def on_message(self, frame: dict[str, Any]) -> None:
        """Store, publish to the group's other sockets, then acknowledge with the echo.

        This socket is left out of the relay and gets its echo here, so the
        acknowledgement always precedes the answer to the client's next frame.
        """
        body, client_id = protocol.parse_message(frame)
        result, events = await self.guarded(self.store_message, body, client_id)
        if result.created:
            # Published from the event loop after the commit, so the database
            # thread never waits on Redis; the conversation's frame and the
            # recipient's inbox frame go out together.
            result.broadcast = (await group_send_many(events))[0]
        if result.created and result.broadcast:
            await self.send(text_data=events[0][1]["text"])
            return
        echo = protocol.message_frame(protocol.message_dict(result.message))
        if result.created:
            # The channel layer refused the broadcast: the row is stored, so the
            # sender still gets its acknowledgement and the others get it on resume.
            echo["broadcast"] = False
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

    def store_message(
        self, body: str, client_id: str | None
    ) -> tuple[services.SendResult, list[tuple[str, dict[str, Any]]]]:
        """Store the message if the user may still post (committed on return), build its events."""
        try:
            result = services.message_store(
                sender=self.user, conversation=self.conversation, body=body, client_id=client_id
            )
        except services.PostingRefused:
            access.access_post(self.user, self.conversation)  # raises with the reason
            raise access.AccessDenied("you may not post here") from None
        events = (
            services.message_events(
                message=result.message,
                conversation=self.conversation,
                exclude_channel=self.channel_name,
                inbox_unread=result.inbox_unread,
            )
            if result.created
            else []
        )
        return result, events

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

    def ready_frame(self) -> dict[str, Any]:
        return {
            "type": "ready",
            "conversation": self.conversation.pk,
            "peer": protocol.user_dict(self.peer),
            "read": selectors.read_markers(conversation_id=self.conversation.pk),
        }


class RoomConsumer(ConversationConsumer):
    """``/ws/rooms/<slug>/``: the room group, with presence across tabs and processes."""

    online: frozenset[int] = frozenset()  # who this socket's client was told is in the room

    def load(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        self.conversation = access.access_room_join(self.user, slug)
        self.blocked = selectors.blocked_ids(user_id=self.user_id)

    def ready_frame(self) -> dict[str, Any]:
        room = self.conversation
        online = selectors.room_online(conversation_id=room.pk, hidden_users=self.blocked)
        self.online = frozenset(user["id"] for user in online)
        return {
            "type": "ready",
            "conversation": room.pk,
            "room": {"slug": room.slug, "name": room.name, "private": room.private},
            "online": online,
        }

    def wants(self, event: dict[str, Any]) -> bool:
        """Also drop a join or leave this socket's view of who is online already reflects.

        An announcement published just before this socket joined the group can
        still reach it after its ``ready`` listed the outcome; the client then
        sees each user join once and leave once, in turn.
        """
        if not super().wants(event):
            return False
        presence = event.get("presence")
        if presence is None:
            return True
        user_id = event["sender"]
        if (presence == "join") == (user_id in self.online):
            return False
        self.online ^= {user_id}
        return True

    async def start(self) -> None:
        first = await database_sync_to_async(services.presence_enter)(
            conversation_id=self.conversation.pk, user_id=self.user_id, channel_name=self.channel_name
        )
        await super().start()
        if first:
            await self.announce(protocol.join_frame)

    async def heartbeat(self) -> None:
        """Keep this socket's presence row fresh; announce users whose server process died."""
        beat = await database_sync_to_async(services.presence_refresh)(
            conversation_id=self.conversation.pk, user_id=self.user_id, channel_name=self.channel_name
        )
        if beat.back:
            # Every socket in the room, this user's own included, was told they left.
            await self.announce(protocol.join_frame, to_self=True)
        for user in beat.gone:
            await group_send(
                self.group, protocol.relay_event(protocol.leave_frame(user), sender=user["id"], presence="leave")
            )

    async def stop(self) -> None:
        last = await database_sync_to_async(services.presence_exit)(
            conversation_id=self.conversation.pk, user_id=self.user_id, channel_name=self.channel_name
        )
        if last:
            await self.announce(protocol.leave_frame)

    async def announce(self, build: Callable[[dict[str, Any]], dict[str, Any]], *, to_self: bool = False) -> None:
        """Send this user's join or leave to the room's other sockets (``to_self``: the user's own too)."""
        frame = build(protocol.user_dict(self.user))
        exclude_user = None if to_self else self.user_id
        event = protocol.relay_event(frame, exclude_user=exclude_user, sender=self.user_id, presence=frame["type"])
        await group_send(self.group, event)
