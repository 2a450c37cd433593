"""A Redis channel layer whose sockets outlive a Redis outage.

Stock ``RedisChannelLayer.receive`` raises when Redis is unreachable, which
kills every consumer on the process (close 1011) for the length of the outage.
This one waits and retries instead: sockets stay open, senders still get their
acknowledgement from the database, and once Redis is back the consumers'
heartbeat re-adds them to their groups (a restarted Redis has forgotten them).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 5.0


class ResilientRedisChannelLayer(RedisChannelLayer):
    """``RedisChannelLayer`` that retries ``receive`` with back-off while Redis is down."""

    async def receive(self, channel: str) -> dict[str, Any]:
        delay = 0.1
        while True:
            try:
                return await super().receive(channel)
            except (RedisError, OSError):
                log.warning("channel layer receive failed; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
