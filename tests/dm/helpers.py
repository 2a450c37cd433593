"""Small queries shared by the messaging tests."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from dm.models import Message


async def message_count() -> int:
    """How many messages are stored, in every conversation."""
    return await sync_to_async(Message.objects.count)()
