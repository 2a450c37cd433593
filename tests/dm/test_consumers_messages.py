"""Messages on the chat sockets: echo, delivery, inbox frames, error frames for bad frames."""

from __future__ import annotations

from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from dm.models import Block, Conversation, Message
from social.realtime.groups import user_group
from tests.dm.helpers import message_count

pytestmark = pytest.mark.django_db(transaction=True)


async def test_message_is_echoed_to_sender_and_delivered_to_peer(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    await alice.until_ready()
    await bob.until_ready()
    await alice.send({"type": "message", "body": "  hi bob  ", "client_id": "c1"})
    echo = await alice.recv()
    assert echo == await bob.recv()
    stored = await sync_to_async(Message.objects.get)()
    assert echo["type"] == "message"
    assert echo["message"]["id"] == stored.pk
    assert echo["message"]["body"] == "hi bob"
    assert echo["message"]["client_id"] == "c1"
    assert echo["message"]["sender"] == {"id": users["alice"].pk, "username": "alice"}
    assert "broadcast" not in echo
    conversation = await sync_to_async(Conversation.objects.get)(pk=stored.conversation_id)
    assert conversation.last_message_at == stored.created_at


async def test_echo_comes_once_and_before_the_answer_to_the_next_frame(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    alice_tab = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice_tab.until_ready()
    await alice.send({"type": "message", "body": "first"})
    await alice.send({"type": "no-such-frame"})
    assert (await alice.recv())["message"]["body"] == "first"
    assert (await alice.recv())["code"] == "unknown_type"
    assert await alice.silent()
    assert (await alice_tab.recv())["message"]["body"] == "first"  # the sender's other tabs via the group
    assert await alice_tab.silent()


async def test_resent_client_id_echoes_the_stored_message_to_the_sender_only(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    await alice.until_ready()
    await bob.until_ready()
    await alice.send({"type": "message", "body": "once", "client_id": "same"})
    first = await alice.recv()
    await bob.recv()
    await alice.send({"type": "message", "body": "once", "client_id": "same"})
    again = await alice.recv()
    assert again["message"] == first["message"]
    assert await bob.silent()
    assert await message_count() == 1


async def test_new_dm_sends_an_inbox_frame_to_the_recipient(connect, listen, users):
    inbox = await listen(user_group(users["bob"].pk))
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "ping"})
    echo = await alice.recv()
    frame = await inbox()
    assert frame == {
        "type": "inbox",
        "unread": 1,
        "conversation": echo["message"]["conversation"],
        "message": echo["message"],
    }


async def test_sender_gets_its_echo_from_the_store_when_the_layer_is_down(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    # The layer refuses every send, one by one or batched, as Redis does while it is down.
    layer, down = get_channel_layer(), ConnectionError("layer down")
    with (
        mock.patch.object(layer, "group_send", side_effect=down),
        mock.patch.object(layer, "group_send_many", side_effect=down, create=True),
    ):
        await alice.send({"type": "message", "body": "still here", "client_id": "k"})
        echo = await alice.recv()
    assert echo["broadcast"] is False
    assert echo["message"]["body"] == "still here"
    assert await message_count() == 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        (b"\x00\x01", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ({"body": "no type"}, "bad_frame"),
        ({"type": "shout"}, "unknown_type"),
        ({"type": "message", "body": "   "}, "invalid"),
        ({"type": "message", "body": "x" * 4001}, "too_long"),
        ({"type": "message", "body": 5}, "invalid"),
        ({"type": "message", "body": "hi", "client_id": "x" * 65}, "too_long"),
        ({"type": "message", "body": "hi", "client_id": 12}, "invalid"),
        ({"type": "read", "message_id": "12"}, "invalid"),
        ({"type": "read", "message_id": 1.5}, "invalid"),
        ({"type": "read", "message_id": True}, "invalid"),
        ({"type": "read"}, "invalid"),
    ],
)
async def test_bad_frames_get_error_frames_and_store_nothing(connect, users, frame, code):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice.send(frame)
    error = await alice.recv()
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    await alice.send({"type": "message", "body": "socket still open"})
    assert (await alice.recv())["type"] == "message"
    assert await message_count() == 1


async def test_error_for_a_bad_message_echoes_its_client_id(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "", "client_id": "abc"})
    assert (await alice.recv())["client_id"] == "abc"


async def test_room_message_reaches_every_member_once(connect, users, room):
    sockets = [await connect(name, "/ws/rooms/general/") for name in ("alice", "bob", "carol")]
    for socket in sockets:
        await socket.until_ready()
    for socket in sockets:
        await socket.drain()
    await sockets[1].send({"type": "message", "body": "hello room"})
    for socket in sockets:
        frame = await socket.recv()
        assert frame["message"]["body"] == "hello room"
        assert await socket.silent(0.1)


async def test_room_drops_frames_from_users_you_blocked(connect, users, room):
    await sync_to_async(Block.objects.create)(blocker=users["carol"], blocked=users["bob"])
    # One after the other: each one's ready is taken before the next one joins.
    carol = await connect("carol", "/ws/rooms/general/")
    await carol.until_ready()
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    bob = await connect("bob", "/ws/rooms/general/")
    _, ready = await bob.until_ready()
    assert (await alice.recv_type("join"))["user"]["username"] == "bob"
    await bob.send({"type": "typing"})
    await bob.send({"type": "message", "body": "from bob"})
    assert (await alice.recv())["type"] == "typing"
    assert (await alice.recv())["message"]["body"] == "from bob"
    # carol hears alice join, and nothing of bob: not his join, typing or message.
    assert (await carol.recv_type("join"))["user"]["username"] == "alice"
    assert await carol.silent()
