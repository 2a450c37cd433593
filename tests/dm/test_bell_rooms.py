"""The bell follows the user's rooms: new room messages reach it live, nothing else of the room does."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm import services
from dm.models import Block

pytestmark = pytest.mark.django_db(transaction=True)


async def open_bell(connect, name):
    bell = await connect(name, "/ws/notifications/")
    await bell.until_ready()
    return bell


async def test_a_room_message_reaches_the_members_bells_and_only_the_message(connect, users, room):
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    bob_bell = await open_bell(connect, "bob")
    carol_bell = await open_bell(connect, "carol")
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    await alice.send({"type": "typing"})
    await alice.send({"type": "message", "body": "hello room", "client_id": "h"})
    echo = await alice.recv_type("message")
    frame = await bob_bell.recv()
    assert frame == echo
    await alice.send({"type": "read", "message_id": echo["message"]["id"]})
    await alice.send({"type": "react", "message_id": echo["message"]["id"], "emoji": "👍"})
    await alice.recv_type("message_update")
    # No typing, join, read or reaction traffic of the room on the bell; nothing for a non-member.
    assert await bob_bell.silent(0.4)
    assert await carol_bell.silent(0.1)


async def test_a_bell_drops_room_messages_from_users_it_blocked(connect, users, room):
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    await sync_to_async(Block.objects.create)(blocker=users["bob"], blocked=users["alice"])
    bob_bell = await open_bell(connect, "bob")
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "you will not see this"})
    await alice.recv_type("message")
    assert await bob_bell.silent(0.4)


async def test_a_bell_follows_rooms_joined_and_left_while_it_is_open(connect, users, room):
    bob_bell = await open_bell(connect, "bob")
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "before bob joined"})
    await alice.recv_type("message")
    assert await bob_bell.silent(0.3)

    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    # Joining re-checks bob's sockets; wait until his bell follows the room.
    for attempt in range(50):
        await alice.send({"type": "message", "body": f"after bob joined {attempt}", "client_id": f"j{attempt}"})
        await alice.recv_type("message")
        if not await bob_bell.silent(0.1):
            frame = await bob_bell.recv()
            break
    assert frame["type"] == "message" and frame["message"]["body"].startswith("after bob joined")
    await bob_bell.drain()

    await sync_to_async(services.room_leave)(user=users["bob"], conversation=room)
    await bob_bell.drain(0.3)
    await alice.send({"type": "message", "body": "after bob left"})
    await alice.recv_type("message")
    assert await bob_bell.silent(0.4)


async def test_reading_a_room_tells_the_readers_bells_to_refresh_the_list(connect, users, room):
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    sent = await sync_to_async(services.message_send)(
        sender=users["alice"], conversation=room, body="unread", client_id=None
    )
    bob_bell = await open_bell(connect, "bob")
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    await bob.send({"type": "read", "message_id": sent.message.pk})
    inbox = await bob_bell.recv_type("inbox")
    assert (inbox["conversation"], inbox["message"], inbox["unread"]) == (room.pk, None, 0)
