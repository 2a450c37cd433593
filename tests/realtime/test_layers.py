"""The pub/sub layer's direct relays: taken at once while the socket accepts them, queued (marked) otherwise."""

import asyncio
import json
import os

import pytest

from social.realtime.layers import BATCH_MAX, BATCH_MIN, ResilientRedisPubSubChannelLayer
from social.realtime.protocol import QUEUED_KEY, relay_event
from tests.conftest import REDIS_URL, needs_redis
from tests.support.relays import broken_then_recording
from tests.support.waiting import until_subscribed, wait_for

pytestmark = needs_redis


@pytest.fixture
async def layer():
    layer = ResilientRedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=f"test-direct-{os.getpid()}")
    yield layer
    await layer.flush()


async def joined(layer, group):
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await until_subscribed(layer, group)
    return channel


def numbers(events):
    return [json.loads(event["text"])["n"] for event in events]


async def test_relays_go_to_the_handler_in_order_and_declined_ones_are_queued_marked(layer):
    channel = await joined(layer, "room_1")
    taken, accepting = [], {"now": False}

    def handler(event):
        if accepting["now"]:
            taken.append(event)
        return accepting["now"]

    layer.relay_directly(channel, handler)
    await layer.group_send("room_1", relay_event({"type": "message", "n": 1}))
    queued = await asyncio.wait_for(layer.receive(channel), 2)
    assert queued[QUEUED_KEY] is True
    assert numbers([queued]) == [1]

    accepting["now"] = True
    await layer.group_send_many([("room_1", relay_event({"type": "message", "n": n})) for n in range(2, 12)])
    await wait_for(lambda: len(taken) == 10, 2)
    assert numbers(taken) == list(range(2, 12))


async def test_without_a_handler_group_messages_are_queued_unmarked(layer):
    channel = await joined(layer, "room_2")
    layer.relay_directly(channel, lambda event: True)
    layer.relay_directly(channel, None)
    await layer.group_send("room_2", relay_event({"type": "message", "n": 7}))
    event = await asyncio.wait_for(layer.receive(channel), 2)
    assert QUEUED_KEY not in event
    assert numbers([event]) == [7]


async def test_a_group_message_is_decoded_once_for_all_local_members(layer):
    channels = [await joined(layer, "room_3") for _ in range(3)]
    seen = []
    for channel in channels:
        layer.relay_directly(channel, lambda event: seen.append(event) or True)
    await layer.group_send("room_3", relay_event({"type": "message", "n": 3}))
    await wait_for(lambda: len(seen) == 3, 2)
    assert len(seen) == 3
    assert seen[0] is seen[1] is seen[2]


async def test_a_large_batch_reaches_each_groups_sockets_once_whether_relayed_or_queued(layer):
    """group_send_many with many events travels as batches on one channel; each process sorts it out."""
    relayed_channel = await joined(layer, "user_1")
    queued_channel = await joined(layer, "user_2")
    taken = []
    layer.relay_directly(relayed_channel, lambda event: taken.append(event) or True)
    events = [
        (f"user_{n % 3 + 1}", relay_event({"type": "notification", "n": n})) for n in range(BATCH_MAX + BATCH_MIN)
    ]
    await layer.group_send_many(events)
    queued = [await asyncio.wait_for(layer.receive(queued_channel), 2) for n in range(len(events)) if n % 3 == 1]
    await wait_for(lambda: len(taken) == len(queued), 2)
    assert numbers(taken) == [n for n in range(len(events)) if n % 3 == 0]
    assert numbers(queued) == [n for n in range(len(events)) if n % 3 == 1]
    assert all(QUEUED_KEY not in event for event in queued)
    # user_3 has no socket here, and nothing else arrives.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(queued_channel), 0.2)


async def test_a_handler_that_raises_does_not_pass_for_a_lost_connection(layer):
    """The reader survives one bad socket: the others get every message and nobody is told to resume."""
    broken_channel = await joined(layer, "room_5")
    good_channel = await joined(layer, "room_5")
    taken = broken_then_recording(layer, broken_channel, good_channel)
    for n in (5, 6):
        await layer.group_send("room_5", relay_event({"type": "message", "n": n}))
    await wait_for(lambda: len(taken) == 2, 2)
    assert numbers(taken) == [5, 6]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(good_channel), 0.3)


async def test_a_groups_several_events_travel_together_and_arrive_in_order(layer):
    """A chat socket's batch: one message per group; relayed and queued sockets each get every event, in order."""
    relayed_channel = await joined(layer, "room_6")
    queued_channel = await joined(layer, "room_6")
    other_channel = await joined(layer, "room_7")
    taken = []
    layer.relay_directly(relayed_channel, lambda event: taken.append(event) or True)
    events = [("room_6", relay_event({"type": "message", "n": n})) for n in range(5)]
    events.insert(2, ("room_7", relay_event({"type": "message", "n": 99})))
    await layer.group_send_many(events)
    queued = [await asyncio.wait_for(layer.receive(queued_channel), 2) for _ in range(5)]
    assert numbers(queued) == list(range(5))
    assert numbers([await asyncio.wait_for(layer.receive(other_channel), 2)]) == [99]
    await wait_for(lambda: len(taken) == 5, 2)
    assert numbers(taken) == list(range(5))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(queued_channel), 0.2)
