"""A Redis channel layer whose sockets outlive a Redis outage.

Stock ``RedisChannelLayer.receive`` raises when Redis is unreachable, which
kills every consumer on the process (close 1011) for the length of the outage.
This one waits and retries instead: sockets stay open and senders still get
their acknowledgement from the database. Once Redis answers again it hands each
waiting consumer a ``layer.recovered`` event: pushes were lost meanwhile and a
restarted Redis has forgotten the groups, so the consumer closes with 4012 and
its client resumes with ``after``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from social.realtime.protocol import EVENT_LAYER_RECOVERED

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 5.0


class ResilientRedisChannelLayer(RedisChannelLayer):
    """``RedisChannelLayer`` that retries ``receive`` with back-off while Redis is down."""

    async def receive(self, channel: str) -> dict[str, Any]:
        delay = 0.1
        failed = False
        while True:
            try:
                if failed:
                    # Prove Redis is back before telling the consumer to resume.
                    await self.connection(0).ping()
                    return {"type": EVENT_LAYER_RECOVERED}
                return await super().receive(channel)
            except (RedisError, OSError):
                if not failed:
                    log.warning("channel layer unreachable; retrying", exc_info=True)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
