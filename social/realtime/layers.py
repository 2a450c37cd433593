"""Channel layers whose sockets outlive a Redis outage and take group messages directly.

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
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
    _wrap_close,
)
from redis.exceptions import RedisError

from social.realtime import wire
from social.realtime.protocol import QUEUED_KEY, layer_recovered_event

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 5.0
# group_send_many sends this many events or more as batches on one channel
# (a DM's two frames stay two publishes); a batch holds at most BATCH_MAX,
# which keeps a message well under Redis's pub/sub output buffer limits.
BATCH_MIN = 16
BATCH_MAX = 500
BATCH_KEY = "__batch__"
# A message on a group's own channel carrying several events for that group.
GROUP_BATCH_KEY = "__events__"


def _offered(handler: Callable[[dict[str, Any]], bool], event: dict[str, Any], channel: str) -> bool:
    """Offer a group message to a socket's relay handler; True when it took it.

    A handler that raises counts as having taken it (the frame is lost for that
    socket; its client converges through ``after``), so one bad socket can
    neither stop the delivery to the others nor, inside the pub/sub reader,
    pass for a lost Redis connection (which would close every socket).
    """
    try:
        return handler(event)
    except Exception:
        log.exception("relay to %s failed", channel)
        return True


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
                    return layer_recovered_event()
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

    def _receive_message(self, message: dict[str, Any] | None) -> None:
        """Fan a group message, or each of a batch's, out to this process's sockets.

        The stock layer queues a copy for every socket, and each socket's
        consumer wakes, decodes its copy and dispatches it: several event-loop
        hops per delivery. A socket that registered a handler
        (``relay_directly``) is offered the message decoded once for the whole
        group; what the handler declines is queued as before, marked with
        ``QUEUED_KEY`` so the consumer can keep its frames in order.
        """
        layer = self.channel_layer
        if message is None:
            return
        name = message["channel"]
        name = name.decode() if isinstance(name, bytes) else name
        if name == layer.batch_channel:
            with wire.coalesced():
                for group_channel, event in layer.channel_layer.deserialize(message["data"])[BATCH_KEY]:
                    if group_channel in layer.groups:
                        self._fan_out(group_channel, event=event)
            return
        if name in layer.channels or name not in layer.groups:
            super()._receive_message(message)
            return
        event = layer.channel_layer.deserialize(message["data"])
        events = event.get(GROUP_BATCH_KEY)
        if events is None:
            self._fan_out(name, data=message["data"], event=event)
            return
        # Several messages for one group at once: each socket gets them in one write.
        with wire.coalesced():
            for event in events:
                self._fan_out(name, event=event)

    def _fan_out(self, group_channel: str, *, event: dict[str, Any], data: bytes | None = None) -> None:
        """Deliver one decoded group message (``data``: as received, if it was) to the group's local sockets."""
        layer = self.channel_layer
        marked = None
        for channel in list(layer.groups.get(group_channel, ())):
            queue = layer.channels.get(channel)
            if queue is None:
                continue
            handler = layer.direct.get(channel)
            if handler is None:
                if data is None:
                    data = layer.channel_layer.serialize(event)
                queue.put_nowait(data)
                continue
            if not _offered(handler, event, channel):
                if marked is None:
                    marked = layer.channel_layer.serialize({**event, QUEUED_KEY: True})
                queue.put_nowait(marked)

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        """Publish many messages in one pipelined round trip."""
        async with self._lock:
            self._ensure_redis()
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    pipe.publish(channel, payload)
                await pipe.execute()

    def _announce_recovery(self) -> None:
        # Publications made while the subscription was down are gone for good.
        recovered = self.channel_layer.channel_layer.serialize(layer_recovered_event())
        for queue in list(self.channel_layer.channels.values()):
            queue.put_nowait(recovered)


class _ResilientLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_ResilientShard(shard.host, self) for shard in self._shards]
        # channel name -> handler(event) -> bool (False: queue the event instead).
        self.direct: dict[str, Callable[[dict[str, Any]], bool]] = {}
        self.batch_channel = f"{self.prefix}__batch__"

    def relay_directly(self, channel: str, handler: Callable[[dict[str, Any]], bool] | None) -> None:
        """Hand this channel's group messages to ``handler`` instead of its queue (None: stop)."""
        if handler is None:
            self.direct.pop(channel, None)
        else:
            self.direct[channel] = handler

    def open_inbox(self, channel: str, inbox: Any) -> None:
        """Deliver a channel made by ``new_channel`` into the consumer's ``inbox`` (social/realtime/inbox.py).

        The inbox takes the place of the channel's ``asyncio.Queue``, so every
        path that queues for a local channel (``put_nowait``) now hands the
        message to the socket's task, which needs no receive task of its own.
        """
        inbox.decode = self.channel_layer.deserialize
        self.channels[channel] = inbox

    async def close_inbox(self, channel: str) -> None:
        """The consumer is done: forget the channel and unsubscribe, as a cancelled ``receive`` does."""
        if self.channels.pop(channel, None) is None:
            return
        try:
            await self._get_shard(channel).unsubscribe(channel)
        except Exception:
            log.warning("unsubscribing %s failed", channel, exc_info=True)

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        # Every process with a socket in any group hears the batches.
        await self._get_shard(self.batch_channel).subscribe(self.batch_channel)

    async def group_send_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Send to many groups at once, each group's events in order.

        ``group_send`` in a loop costs a round trip each, one after another
        (the shard's publish lock); a job notifying a thousand users would wait
        on a thousand of them. Events for one group travel as one message
        (a chat socket's batch of messages: its members' sockets each get them
        in one write). A few groups' messages are pipelined, one round trip per
        Redis shard. From BATCH_MIN groups on they travel as batches of up to
        BATCH_MAX events on the batch channel, which every process with sockets
        hears and decodes once, delivering what is for its sockets: one message
        to read per batch instead of one per group.
        """
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for group, event in events:
            by_channel[self._get_group_channel_name(group)].append(event)
        if len(by_channel) >= BATCH_MIN:
            addressed = [[channel, event] for channel, its_events in by_channel.items() for event in its_events]
            batches = [
                (self.batch_channel, self.channel_layer.serialize({BATCH_KEY: addressed[i : i + BATCH_MAX]}))
                for i in range(0, len(addressed), BATCH_MAX)
            ]
            await self._get_shard(self.batch_channel).publish_many(batches)
            return
        by_shard: dict[_ResilientShard, list[tuple[str, bytes]]] = defaultdict(list)
        serialize = self.channel_layer.serialize
        for channel, its_events in by_channel.items():
            items = by_shard[self._get_shard(channel)]
            if len(its_events) == 1:
                items.append((channel, serialize(its_events[0])))
                continue
            for i in range(0, len(its_events), BATCH_MAX):
                items.append((channel, serialize({GROUP_BATCH_KEY: its_events[i : i + BATCH_MAX]})))
        for shard, items in by_shard.items():
            await shard.publish_many(items)


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


class RelayingInMemoryChannelLayer(InMemoryChannelLayer):
    """The in-memory layer (one process: development, tests) with direct relays.

    Stock ``group_send`` deep-copies the message into every member's queue with
    a task each, and every consumer wakes to dispatch its copy. A socket that
    registered a handler (``relay_directly``, as with the pub/sub layer) is
    offered the message itself instead; what it declines is queued, marked
    with ``QUEUED_KEY``, as before. Only a send made on the loop the socket
    registered from is offered: sync code publishing from a thread of its own
    (``async_to_sync``) must not write to another loop's sockets.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct: dict[str, tuple[Callable[[dict[str, Any]], bool], asyncio.AbstractEventLoop]] = {}
        # channel name -> the consumer's inbox (social/realtime/inbox.py), instead of a queue.
        self.inboxes: dict[str, Any] = {}

    def open_inbox(self, channel: str, inbox: Any) -> None:
        """Deliver this channel's messages into the consumer's ``inbox`` instead of a queue."""
        self.inboxes[channel] = inbox

    async def close_inbox(self, channel: str) -> None:
        """The consumer is done: its channel's messages are dropped from now on, as with no receiver."""
        self.inboxes.pop(channel, None)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Into the channel's inbox when it has one (a full one raises ``ChannelFull``, as a full queue does)."""
        inbox = self.inboxes.get(channel)
        if inbox is None:
            await super().send(channel, message)
            return
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        if len(inbox) >= self.get_capacity(channel):
            raise ChannelFull(channel)
        inbox.put_threadsafe(deepcopy(message))

    def relay_directly(self, channel: str, handler: Callable[[dict[str, Any]], bool] | None) -> None:
        """Hand this channel's group messages to ``handler`` instead of its queue (None: stop)."""
        if handler is None:
            self.direct.pop(channel, None)
        else:
            self.direct[channel] = (handler, asyncio.get_running_loop())

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    async def group_send_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Send to many groups at once, each group's events in order; a live
        socket gets all its frames of the call in one write (``wire.coalesced``)."""
        for group, _ in events:
            self.require_valid_group_name(group)
        self._clean_expired()
        loop = asyncio.get_running_loop()
        queued: list[tuple[str, dict[str, Any]]] = []
        with wire.coalesced():
            for group, message in events:
                marked = None
                for channel in list(self.groups.get(group, ())):
                    handler, handler_loop = self.direct.get(channel, (None, None))
                    copy = message
                    if handler is not None and handler_loop is loop:
                        if _offered(handler, message, channel):
                            continue
                        if marked is None:
                            marked = {**message, QUEUED_KEY: True}
                        copy = marked
                    queued.append((channel, copy))
        # After the relays: a socket that declined one event declines the rest
        # (it has a backlog), so its events still reach its queue in order.
        for channel, copy in queued:
            # A full queue drops the message, as the stock layer does; the
            # client converges through ``after``.
            with contextlib.suppress(ChannelFull):
                await self.send(channel, copy)

    async def flush(self) -> None:
        await super().flush()
        self.direct = {}
        self.inboxes = {}
