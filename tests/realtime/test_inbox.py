"""One task per socket (social/realtime/inbox.py): the layer hands the consumer its messages; client
messages and layer events are dispatched one at a time, each source in order."""

import asyncio
import inspect
import os
from importlib.metadata import version

import pytest
from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull, StopConsumer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubLoopLayer, RedisSingleShardConnection

from social.realtime import inbox
from social.realtime.layers import RelayingInMemoryChannelLayer, ResilientRedisPubSubChannelLayer
from tests.conftest import REDIS_URL, needs_redis
from tests.support.waiting import until_subscribed, wait_for


class Recorder:
    """A consumer that records what it is given; ``block`` holds a dispatch until released."""

    def __init__(self):
        self.seen = []
        self.block = None

    async def dispatch(self, message):
        if message["type"] == "websocket.disconnect":
            raise StopConsumer
        self.seen.append(message["n"])
        if self.block is not None and message["n"] == self.block[0]:
            await self.block[1].wait()


async def serving(layer):
    consumer, client = Recorder(), asyncio.Queue()

    async def send(message):
        pass

    task = asyncio.ensure_future(inbox.serve(consumer, layer, {"type": "websocket"}, client.get, send))
    await wait_for(lambda: getattr(consumer, "channel_name", None), what="the consumer has its channel")
    return consumer, client, task


async def test_client_messages_and_layer_events_each_arrive_in_order_one_at_a_time():
    layer = RelayingInMemoryChannelLayer()
    consumer, client, task = await serving(layer)
    release = asyncio.Event()
    consumer.block = (1, release)
    await client.put({"type": "websocket.receive", "n": 1})
    await wait_for(lambda: consumer.seen == [1], what="the first frame is being handled")
    for n in (10, 11, 12):
        await layer.send(consumer.channel_name, {"type": "event", "n": n})
    await client.put({"type": "websocket.receive", "n": 2})
    # Nothing else is dispatched while a message is being handled.
    await asyncio.sleep(0)
    assert consumer.seen == [1]
    release.set()
    await wait_for(lambda: len(consumer.seen) == 5, what="everything is dispatched")
    assert [n for n in consumer.seen if n >= 10] == [10, 11, 12]
    assert [n for n in consumer.seen if n < 10] == [1, 2]
    await client.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)
    assert consumer.channel_name not in layer.inboxes


async def test_a_full_inbox_refuses_like_a_full_queue():
    layer = RelayingInMemoryChannelLayer(capacity=2)
    consumer, client, task = await serving(layer)
    consumer.block = (0, asyncio.Event())
    await client.put({"type": "websocket.receive", "n": 0})
    await wait_for(lambda: consumer.seen == [0])
    await layer.send(consumer.channel_name, {"type": "event", "n": 1})
    await layer.send(consumer.channel_name, {"type": "event", "n": 2})
    with pytest.raises(ChannelFull):
        await layer.send(consumer.channel_name, {"type": "event", "n": 3})
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_core_redis_layer_keeps_channels_own_dispatch():
    assert not inbox.supported(RedisChannelLayer(hosts=["redis://127.0.0.1:1"]))
    assert not inbox.supported(None)
    assert inbox.supported(RelayingInMemoryChannelLayer())


@needs_redis
async def test_the_pubsub_layer_delivers_group_and_channel_messages_and_forgets_the_channel():
    layer = ResilientRedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=f"test-inbox-{os.getpid()}")
    try:
        consumer, client, task = await serving(layer)
        await layer.group_add("g", consumer.channel_name)
        await until_subscribed(layer, "g")
        await layer.group_send("g", {"type": "event", "n": 1})
        await layer.send(consumer.channel_name, {"type": "event", "n": 2})
        await wait_for(lambda: consumer.seen == [1, 2], what="both delivered, in order")
        await client.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, 5)
        assert consumer.channel_name not in layer._get_layer().channels
    finally:
        await layer.flush()


def test_the_library_code_mirrored_here_is_unchanged():
    """inbox.serve mirrors AsyncConsumer.__call__, and the pub/sub layer's inbox stands in its channel
    queue: a new Channels or channels-redis must be checked against them before this passes again."""
    assert version("channels") == "4.3.2"
    assert version("channels-redis") == "4.3.0"
    assert inbox.mirrored_versions_installed()
    call = inspect.getsource(AsyncConsumer.__call__)
    for line in (
        "self.scope = scope",
        "self.channel_name = await self.channel_layer.new_channel()",
        "self.base_send = send",
        "await await_many_dispatch(",
    ):
        assert line in call
    assert "self.channels[channel] = asyncio.Queue()" in inspect.getsource(RedisPubSubLoopLayer._subscribe_to_channel)
    receive = inspect.getsource(RedisPubSubLoopLayer.receive)
    assert "del self.channels[channel]" in receive
    assert "await shard.unsubscribe(channel)" in receive
    assert "self.channel_layer.channels[name].put_nowait(data)" in inspect.getsource(
        RedisSingleShardConnection._receive_message
    )


def test_another_release_of_channels_runs_channels_own_loop(monkeypatch):
    monkeypatch.setattr(inbox, "MIRRORED_VERSIONS", {"channels": "0.0.0", "channels-redis": "0.0.0"})
    inbox.mirrored_versions_installed.cache_clear()
    try:
        assert not inbox.supported(RelayingInMemoryChannelLayer())
    finally:
        monkeypatch.undo()
        inbox.mirrored_versions_installed.cache_clear()
    assert inbox.supported(RelayingInMemoryChannelLayer())
