"""The in-memory layer's direct relays (one process, no Redis): like the pub/sub layer's."""

import asyncio
import json
import threading

import pytest

from social.realtime.layers import RelayingInMemoryChannelLayer
from social.realtime.protocol import QUEUED_KEY, relay_event
from tests.support.relays import broken_then_recording


@pytest.fixture
async def layer():
    layer = RelayingInMemoryChannelLayer()
    yield layer
    await layer.flush()


async def joined(layer, group):
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


def number(event):
    return json.loads(event["text"])["n"]


async def test_relays_go_to_the_handler_in_order_and_declined_ones_are_queued_marked(layer):
    channel = await joined(layer, "room_1")
    taken, accepting = [], {"now": False}

    def handler(event):
        if accepting["now"]:
            taken.append(number(event))
        return accepting["now"]

    layer.relay_directly(channel, handler)
    await layer.group_send("room_1", relay_event({"type": "message", "n": 1}))
    queued = await asyncio.wait_for(layer.receive(channel), 1)
    assert queued[QUEUED_KEY] is True
    assert number(queued) == 1

    accepting["now"] = True
    for n in range(2, 12):
        await layer.group_send("room_1", relay_event({"type": "message", "n": n}))
    assert taken == list(range(2, 12))
    assert channel not in layer.channels  # nothing was queued for the socket


async def test_members_without_a_handler_get_unmarked_copies(layer):
    relayed = await joined(layer, "room_2")
    plain = await joined(layer, "room_2")
    taken = []
    layer.relay_directly(relayed, lambda event: taken.append(number(event)) or True)
    await layer.group_send("room_2", relay_event({"type": "message", "n": 7}))
    event = await asyncio.wait_for(layer.receive(plain), 1)
    assert QUEUED_KEY not in event
    assert (taken, number(event)) == ([7], 7)


async def test_a_send_from_another_event_loop_is_queued_not_handed_over(layer):
    """Sync code in a thread of its own publishes on its own loop: the socket's loop must dispatch."""
    channel = await joined(layer, "room_3")
    taken = []
    layer.relay_directly(channel, lambda event: taken.append(event) or True)
    thread = threading.Thread(
        target=asyncio.run, args=(layer.group_send("room_3", relay_event({"type": "message", "n": 3})),)
    )
    thread.start()
    thread.join()
    event = await asyncio.wait_for(layer.receive(channel), 1)
    assert taken == []
    assert number(event) == 3


async def test_a_handler_that_raises_neither_stops_the_others_nor_the_sender(layer):
    broken_channel = await joined(layer, "room_5")
    good_channel = await joined(layer, "room_5")
    taken = broken_then_recording(layer, broken_channel, good_channel)
    await layer.group_send("room_5", relay_event({"type": "message", "n": 5}))
    assert [number(event) for event in taken] == [5]


async def test_a_batch_reaches_relayed_and_queued_members_in_order_each_once(layer):
    relayed = await joined(layer, "room_6")
    plain = await joined(layer, "room_6")
    other = await joined(layer, "room_7")
    taken = []
    layer.relay_directly(relayed, lambda event: taken.append(number(event)) or True)
    events = [("room_6", relay_event({"type": "message", "n": n})) for n in range(5)]
    events.insert(2, ("room_7", relay_event({"type": "message", "n": 99})))
    await layer.group_send_many(events)
    assert taken == list(range(5))
    assert [number(await asyncio.wait_for(layer.receive(plain), 1)) for _ in range(5)] == list(range(5))
    assert number(await asyncio.wait_for(layer.receive(other), 1)) == 99
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(plain), 0.1)
