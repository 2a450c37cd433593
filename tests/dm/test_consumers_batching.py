"""A burst of messages from one socket: stored in batches, answered in order, none lost at close."""

from __future__ import annotations

import asyncio
import threading
import time
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from dm import services
from dm.models import Membership, Message
from social.realtime import protocol
from social.realtime.batching import Batcher
from social.realtime.groups import control_group
from tests.dm.helpers import message_count
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_burst_is_stored_in_batches_and_echoed_and_delivered_in_order(connect, users, room, settings):
    settings.REALTIME = {**settings.REALTIME, "PENDING_MESSAGES_PER_SOCKET": 4}
    batches = []
    store = services._messages_store

    def recording(sender, conversation, items, exclude_channel):
        batches.append(len(items))
        return store(sender, conversation, items, exclude_channel)

    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()  # before bob opens (see the test below)
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    await alice.recv_type("join")
    bodies = [f"m{n}" for n in range(12)]
    with mock.patch("dm.services._messages_store", recording):
        for body in bodies:
            await alice.send({"type": "message", "body": body, "client_id": body})
        await alice.send({"type": "no-such-frame"})
        echoes = [(await alice.recv())["message"] for _ in bodies]
        # The answer to the frame after the burst comes after every echo.
        assert (await alice.recv())["code"] == "unknown_type"
    assert [echo["body"] for echo in echoes] == bodies
    assert [(await bob.recv())["message"] for _ in bodies] == echoes
    stored = await sync_to_async(list)(Message.objects.order_by("pk").values_list("pk", "body"))
    assert stored == [(echo["id"], echo["body"]) for echo in echoes]
    assert max(batches) > 1, batches
    assert max(batches) <= 4, batches
    assert await bob.silent()


async def test_messages_sent_just_before_the_socket_closes_are_stored_and_delivered(connect, users, room):
    alice = await connect("alice", "/ws/rooms/general/")
    # Ready before bob opens: sockets connect in parallel, and a ready that already
    # lists bob online has no join to announce.
    await alice.until_ready()
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    await alice.recv_type("join")
    for n in range(5):
        await alice.send({"type": "message", "body": f"last words {n}"})
    await alice.close()
    received = [(await bob.recv_type("message"))["message"]["body"] for _ in range(5)]
    assert received == [f"last words {n}" for n in range(5)]
    assert await message_count() == 5


async def test_a_refused_burst_gets_one_error_then_the_close_and_stores_nothing(connect, users, secret):
    bob = await connect("bob", "/ws/rooms/secret/")
    await bob.until_ready()
    await sync_to_async(Membership.objects.filter(conversation=secret, user=users["bob"]).delete)()
    for n in range(6):
        await bob.send({"type": "message", "body": "still in?", "client_id": f"c{n}"})
    error = await bob.recv()
    assert (error["code"], error["client_id"]) == ("forbidden", "c0")
    assert await bob.closed_with() == 4403
    assert await message_count() == 0


async def test_a_bad_message_in_a_burst_is_answered_in_its_place(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "one"})
    await alice.send({"type": "message", "body": "   ", "client_id": "blank"})
    await alice.send({"type": "message", "body": "two"})
    assert (await alice.recv())["message"]["body"] == "one"
    assert (await alice.recv())["client_id"] == "blank"
    assert (await alice.recv())["message"]["body"] == "two"
    assert await message_count() == 2


async def test_a_close_from_an_event_comes_after_the_answers_to_messages_read_before_it(connect, users, room):
    store = services._messages_store
    storing = threading.Event()

    def slow(*args):
        storing.set()
        time.sleep(0.4)  # a slow database: the event arrives while the messages are being stored
        return store(*args)

    put = Batcher.put
    queued = []

    async def recording_put(self, item):
        queued.append(item)
        await put(self, item)

    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    with (
        mock.patch("dm.services._messages_store", slow),
        mock.patch.object(Batcher, "put", recording_put),
        mock.patch("social.realtime.consumers.session_still_valid", return_value=False),
    ):
        for n in range(3):
            await alice.send({"type": "message", "body": f"m{n}"})
        await asyncio.get_running_loop().run_in_executor(None, storing.wait, 2)
        await wait_for(lambda: len(queued) == 3, what="the socket reads the other two meanwhile")
        await get_channel_layer().group_send(control_group(users["alice"].pk), {"type": protocol.EVENT_SESSION_CHECK})
        bodies = [(await alice.recv_type("message", timeout=5))["message"]["body"] for _ in range(3)]
        assert await alice.closed_with() == protocol.CLOSE_REAUTHENTICATE
    assert bodies == ["m0", "m1", "m2"]
    assert await message_count() == 3
