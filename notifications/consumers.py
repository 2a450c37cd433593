"""The bell socket: /ws/notifications/."""

from __future__ import annotations

from typing import Any, ClassVar

from channels.db import database_sync_to_async
from django.conf import settings

from dm.selectors import blocked_ids, inbox_unread_count, room_ids
from notifications import selectors, services
from social.realtime import protocol
from social.realtime.consumers import RealtimeConsumer
from social.realtime.groups import room_group, user_group


def _resume_frames(*, user_id: int, after: int | None) -> list[dict[str, Any]]:
    """The replay (only when ``after`` was given) followed by the ``ready`` frame."""
    unread = selectors.unread_count(user_id=user_id)
    frames: list[dict[str, Any]] = []
    truncated = False
    if after is not None:
        rows, truncated = selectors.notifications_after(
            user_id=user_id, after_id=after, limit=settings.REALTIME["RESUME_LIMIT"]
        )
        frames = [protocol.notification_frame(protocol.notification_dict(row), unread) for row in rows]
    ready = protocol.notifications_ready_frame(unread, inbox_unread_count(user_id=user_id))
    if truncated:
        ready["truncated"] = True
    return [*frames, ready]


class NotificationConsumer(RealtimeConsumer):
    """Joins the user's personal group ``user_<id>`` and the groups of their rooms; marks
    notifications read.

    From a room's group it takes only new messages (``bell`` events), so the
    rooms indicator and the conversation list follow every room live without a
    query per message; the rest of the room's traffic is dropped here.
    """

    frame_handlers: ClassVar[dict[str, str]] = {
        protocol.CLIENT_MARK_READ: "mark_read",
        protocol.CLIENT_MARK_ALL_READ: "mark_all_read",
    }

    rooms: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()

    def load_rooms(self) -> None:
        """The rooms the user is a member of, and whom they blocked (their messages are not shown)."""
        self.rooms = frozenset(room_ids(user_id=self.user_id))
        self.blocked = blocked_ids(user_id=self.user_id)

    def group_names(self) -> list[str]:
        return [user_group(self.user_id), *(room_group(room_id) for room_id in sorted(self.rooms))]

    def wants(self, event: dict[str, Any]) -> bool:
        if event.get("room") is None:
            return super().wants(event)
        return bool(event.get("bell")) and event.get("sender") not in self.blocked

    async def follow_rooms(self) -> None:
        """Listen on the groups of the rooms the user is in now (and no longer on others)."""
        before = self.rooms
        await database_sync_to_async(self.load_rooms)()
        for room_id in before - self.rooms:
            await self.channel_layer.group_discard(room_group(room_id), self.channel_name)
        await self.join_groups()

    async def still_allowed(self) -> bool:
        """Memberships or blocks changed: follow the rooms the user is in now."""
        await self.follow_rooms()
        return True

    async def start(self) -> None:
        # Read once the control group is joined, so a room joined from now on
        # reaches this socket as an access.check event.
        await self.follow_rooms()
        # The group was joined before this read, so nothing committed from now on
        # is missed; live copies of replayed rows are dropped (replayed_up_to).
        # Not thread-sensitive: after a restart every tab reconnects at once, and their
        # replays must not queue on one thread (docs/benchmarks.md, reconnect storm).
        frames = await database_sync_to_async(_resume_frames, thread_sensitive=False)(
            user_id=self.user_id, after=self.cursors["after"]
        )
        for frame in frames:
            if frame["type"] == "notification":
                self.replayed_up_to = frame["notification"]["id"]
            await self.drained()
            await self.send_frame(frame)

    async def mark_read(self, frame: dict[str, Any]) -> None:
        """``{"type": "mark_read", "ids": [..]}``"""
        ids = protocol.parse_id_list(frame.get("ids"))
        result = await database_sync_to_async(services.notifications_mark_read)(user_id=self.user_id, ids=ids)
        await self.answer(result)

    async def mark_all_read(self, frame: dict[str, Any]) -> None:
        """``{"type": "mark_all_read"}``"""
        result = await database_sync_to_async(services.notifications_mark_all_read)(user_id=self.user_id)
        await self.answer(result)

    async def answer(self, result: services.MarkResult) -> None:
        """When the count changed every tab (this one too) gets it through the group; else only this tab."""
        if not result.changed:
            await self.send_frame(protocol.unread_frame(result.unread))
