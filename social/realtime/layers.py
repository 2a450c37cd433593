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
from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
    _wrap_close,
)
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


class _ResilientShard(RedisSingleShardConnection):
    """A pub/sub shard that tells its local sockets when it has reconnected."""

    async def _do_receiving(self) -> None:
        broken = False
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    # redis-py reconnects and re-subscribes inside get_message.
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if broken:
                        broken = False
                        self._announce_recovery()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception:
                if not broken:
                    log.warning("pub/sub connection lost; reconnecting", exc_info=True)
                broken = True
                await asyncio.sleep(0.5)

    def _announce_recovery(self) -> None:
        # Publications made while the subscription was down are gone for good.
        recovered = self.channel_layer.channel_layer.serialize({"type": EVENT_LAYER_RECOVERED})
        for queue in list(self.channel_layer.channels.values()):
            queue.put_nowait(recovered)


class _ResilientLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_ResilientShard(shard.host, self) for shard in self._shards]


class ResilientRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose sockets resume (4012) after a lost subscription.

    Pub/sub publishes each group message once and fans it out inside each
    process, which is what makes large rooms cheap; but it has no buffer, so
    whatever was published during an outage must come back through ``after``.
    """

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            self._layers[loop] = _ResilientLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return self._layers[loop]
