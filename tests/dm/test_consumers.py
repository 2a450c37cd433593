"""The chat sockets in-process: every frame and close code of /ws/dm/ and /ws/rooms/."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from dm import services
from dm.models import Block, Conversation, Membership, Message, Presence, PresenceVersion
from social.realtime import protocol
from social.realtime.groups import control_group, room_group, user_group

pytestmark = pytest.mark.django_db(transaction=True)


async def message_count() -> int:
    return await sync_to_async(Message.objects.count)()


@pytest.fixture
def room(users):
    return services.room_create(creator=users["alice"], name="General", slug="general", private=False)


@pytest.fixture
def secret(users, add_member):
    room = services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)
    add_member(room, users["bob"])
    return room


# Direct messages: connecting.


async def test_dm_ready_names_conversation_peer_and_both_read_markers(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    replay, ready = await alice.until_ready()
    conversation = await sync_to_async(Conversation.objects.get)(kind="direct")
    assert replay == []
    assert ready == {
        "type": "ready",
        "conversation": conversation.pk,
        "peer": {"id": users["bob"].pk, "username": "bob"},
        "read": {"alice": 0, "bob": 0},
    }


@pytest.mark.parametrize(
    ("path", "code"),
    [("/ws/dm/nobody/", 4404), ("/ws/dm/alice/", 4403), ("/ws/rooms/nowhere/", 4404), ("/ws/rooms/secret/", 4403)],
)
async def test_refused_sockets_close_with_their_code(connect, users, secret, path, code):
    socket = await connect("carol" if "rooms" in path else "alice", path)
    assert (await socket.recv())["code"] == "forbidden"
    assert await socket.closed_with() == code


@pytest.mark.parametrize("blocker", ["alice", "bob"])
async def test_blocked_pair_cannot_open_a_dm(connect, users, blocker):
    other = "bob" if blocker == "alice" else "alice"
    await sync_to_async(Block.objects.create)(blocker=users[blocker], blocked=users[other])
    socket = await connect("alice", "/ws/dm/bob/")
    assert await socket.closed_with() == 4403


async def test_anonymous_chat_socket_closes_4401(connect, users):
    socket = await connect(None, "/ws/dm/bob/")
    assert await socket.closed_with() == 4401


# Direct messages: frames.


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


async def test_typing_reaches_only_the_others_and_is_throttled_across_tabs(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    alice_tab = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    for socket in (alice, alice_tab, bob):
        await socket.until_ready()
    await alice.send({"type": "typing"})
    assert await bob.recv() == {"type": "typing", "user": {"id": users["alice"].pk, "username": "alice"}}
    await alice_tab.send({"type": "typing"})
    await alice.send({"type": "typing"})
    assert await bob.silent()
    assert await alice.silent(0.05)
    assert await alice_tab.silent(0.05)


async def test_read_moves_forward_only_and_is_announced(connect, listen, users):
    alice = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    await alice.until_ready()
    await bob.until_ready()
    inbox = await listen(user_group(users["bob"].pk))
    ids = []
    for body in ("one", "two"):
        await alice.send({"type": "message", "body": body})
        ids.append((await alice.recv())["message"]["id"])
        await bob.recv()
        await inbox()
    await bob.send({"type": "read", "message_id": ids[1]})
    bob_dict = {"id": users["bob"].pk, "username": "bob"}
    assert await alice.recv() == {"type": "read", "user": bob_dict, "message_id": ids[1]}
    assert await bob.recv() == {"type": "read", "user": bob_dict, "message_id": ids[1]}
    assert await inbox() == {
        "type": "inbox",
        "unread": 0,
        "conversation": ids and (await conversation_id()),
        "message": None,
    }
    await bob.send({"type": "read", "message_id": ids[0]})
    assert await alice.silent()
    membership = await sync_to_async(Membership.objects.get)(user=users["bob"])
    assert membership.last_read_id == ids[1]


async def conversation_id() -> int:
    return (await sync_to_async(Conversation.objects.get)(kind="direct")).pk


async def test_read_beyond_the_newest_message_stops_at_the_newest(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    await alice.until_ready()
    await bob.until_ready()
    await alice.send({"type": "message", "body": "only"})
    newest = (await alice.recv())["message"]["id"]
    await bob.recv()
    await bob.send({"type": "read", "message_id": newest + 1000})
    assert (await alice.recv())["message_id"] == newest


async def test_ready_carries_read_markers_after_reading(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "x"})
    newest = (await alice.recv())["message"]["id"]
    bob = await connect("bob", "/ws/dm/alice/")
    await bob.until_ready()
    await bob.send({"type": "read", "message_id": newest})
    await bob.recv_type("read")
    again = await connect("alice", "/ws/dm/bob/")
    _, ready = await again.until_ready()
    assert ready["read"] == {"alice": 0, "bob": newest}


async def test_resume_replays_newer_messages_oldest_first_before_ready(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    ids = []
    for body in ("a", "b", "c"):
        await alice.send({"type": "message", "body": body})
        ids.append((await alice.recv())["message"]["id"])
    bob = await connect("bob", f"/ws/dm/alice/?after={ids[0]}")
    replay, ready = await bob.until_ready()
    assert [frame["message"]["id"] for frame in replay] == ids[1:]
    assert "truncated" not in ready


async def test_resume_past_the_limit_sends_the_newest_and_says_truncated(connect, users, settings):
    settings.REALTIME = {**settings.REALTIME, "RESUME_LIMIT": 2}
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    ids = []
    for body in ("a", "b", "c", "d"):
        await alice.send({"type": "message", "body": body})
        ids.append((await alice.recv())["message"]["id"])
    bob = await connect("bob", "/ws/dm/alice/?after=0")
    replay, ready = await bob.until_ready()
    assert [frame["message"]["id"] for frame in replay] == ids[2:]
    assert ready["truncated"] is True


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


async def test_block_created_after_connect_refuses_the_next_message(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    # A bare row, no access.check event: the per-frame check alone must catch it.
    await sync_to_async(Block.objects.create)(blocker=users["bob"], blocked=users["alice"])
    await alice.send({"type": "message", "body": "are you there?", "client_id": "z"})
    error = await alice.recv()
    assert (error["code"], error["client_id"]) == ("forbidden", "z")
    assert await alice.closed_with() == 4403
    assert await message_count() == 0


async def test_blocking_closes_both_sides_sockets_at_once(connect, users):
    alice = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    await alice.until_ready()
    await bob.until_ready()
    await sync_to_async(services.block_create)(blocker=users["bob"], blocked=users["alice"])
    assert await alice.closed_with() == 4403
    assert await bob.closed_with() == 4403


# Rooms.


async def test_room_ready_lists_the_room_and_who_is_online(connect, users, room):
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    alice = await connect("alice", "/ws/rooms/general/")
    _, ready = await alice.until_ready()
    assert ready == {
        "type": "ready",
        "conversation": room.pk,
        "room": {"slug": "general", "name": "General", "private": False},
        "online": [{"id": users["alice"].pk, "username": "alice"}, {"id": users["bob"].pk, "username": "bob"}],
    }


async def test_opening_a_public_room_makes_you_a_member(connect, users, room):
    carol = await connect("carol", "/ws/rooms/general/")
    await carol.until_ready()
    assert await sync_to_async(Membership.objects.filter(conversation=room, user=users["carol"]).exists)()


async def test_private_room_members_may_connect(connect, users, secret):
    bob = await connect("bob", "/ws/rooms/secret/")
    _, ready = await bob.until_ready()
    assert ready["room"] == {"slug": "secret", "name": "Secret", "private": True}


async def test_join_and_leave_count_tabs(connect, users, room):
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    bob_dict = {"id": users["bob"].pk, "username": "bob"}
    bob_one = await connect("bob", "/ws/rooms/general/")
    await bob_one.until_ready()
    assert await alice.recv() == {"type": "join", "user": bob_dict}
    bob_two = await connect("bob", "/ws/rooms/general/")
    await bob_two.until_ready()
    assert await alice.silent()
    await bob_one.close()
    assert await alice.silent()
    await bob_two.close()
    assert await alice.recv() == {"type": "leave", "user": bob_dict}


async def test_announcements_the_ready_snapshot_already_reflects_are_dropped(connect, users, room):
    """A join or leave published just before a socket joined the group can reach it late."""
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    bob = await connect("bob", "/ws/rooms/general/")
    _, ready = await bob.until_ready()
    assert [user["username"] for user in ready["online"]] == ["alice", "bob"]
    await alice.recv_type("join")
    layer = get_channel_layer()
    group = services.conversation_group(room)

    def announce(name: str, kind: str) -> dict:
        user = {"id": users[name].pk, "username": name}
        frame = protocol.join_frame(user) if kind == "join" else protocol.leave_frame(user)
        return protocol.relay_event(frame, exclude_user=user["id"], sender=user["id"], presence=kind)

    await layer.group_send(group, announce("alice", "join"))  # bob's ready listed alice
    await layer.group_send(group, announce("carol", "leave"))  # nor did bob ever see carol
    assert await bob.silent()
    await layer.group_send(group, announce("alice", "leave"))
    await layer.group_send(group, announce("alice", "leave"))
    await layer.group_send(group, announce("alice", "join"))
    assert [(frame["type"], frame["user"]["username"]) for frame in await bob.drain()] == [
        ("leave", "alice"),
        ("join", "alice"),
    ]


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
    carol = await connect("carol", "/ws/rooms/general/")
    alice = await connect("alice", "/ws/rooms/general/")
    bob = await connect("bob", "/ws/rooms/general/")
    _, ready = await bob.until_ready()
    await alice.until_ready()
    await carol.until_ready()
    # Carol's own join may reach alice too, depending on who subscribed first.
    while (await alice.recv_type("join"))["user"]["username"] != "bob":
        pass
    await bob.send({"type": "typing"})
    await bob.send({"type": "message", "body": "from bob"})
    assert (await alice.recv())["type"] == "typing"
    assert (await alice.recv())["message"]["body"] == "from bob"
    await carol.recv_type("join")  # alice's own join arrived before bob's frames
    assert await carol.silent()


async def test_removed_member_is_closed_at_once_and_others_see_the_leave(connect, users, secret):
    alice = await connect("alice", "/ws/rooms/secret/")
    await alice.until_ready()
    bob = await connect("bob", "/ws/rooms/secret/")
    await bob.until_ready()
    await alice.recv_type("join")
    await sync_to_async(services.room_remove)(conversation=secret, user=users["bob"])
    assert await bob.closed_with() == 4403
    await bob.close()
    assert (await alice.recv())["type"] == "leave"


async def test_removed_member_cannot_send_even_before_the_access_check(connect, users, secret):
    bob = await connect("bob", "/ws/rooms/secret/")
    await bob.until_ready()
    await sync_to_async(Membership.objects.filter(conversation=secret, user=users["bob"]).delete)()
    await bob.send({"type": "message", "body": "still in?"})
    assert (await bob.recv())["code"] == "forbidden"
    assert await bob.closed_with() == 4403
    assert await message_count() == 0


async def test_heartbeat_closes_a_socket_that_lost_access(connect, users, secret, settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.1, "SESSION_RECHECK_SECONDS": 0.1}
    bob = await connect("bob", "/ws/rooms/secret/")
    await bob.until_ready()
    await sync_to_async(Membership.objects.filter(conversation=secret, user=users["bob"]).delete)()
    assert await bob.closed_with() == 4403


async def test_heartbeat_keeps_presence_fresh(connect, users, room, settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.1}
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    old = timezone.now() - timedelta(hours=1)
    await sync_to_async(Presence.objects.update)(seen_at=old)
    await asyncio.sleep(0.4)
    assert await sync_to_async(Presence.objects.filter(seen_at__gt=old).count)() == 1


async def test_a_user_swept_while_their_process_stalled_is_announced_back(connect, users, room, settings):
    """Another socket's sweep told the room bob left; bob's next heartbeat says he is back."""
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.1}
    carol = await connect("carol", "/ws/rooms/general/")
    await carol.until_ready()
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    assert (await carol.recv_type("join"))["user"]["username"] == "bob"
    # What the sweeping socket does: publish the leave, having deleted the row.
    bob_user = protocol.user_dict(users["bob"])
    await get_channel_layer().group_send(
        room_group(room.pk),
        protocol.relay_event(protocol.leave_frame(bob_user), sender=bob_user["id"], presence="leave"),
    )
    await sync_to_async(Presence.objects.filter(user=users["bob"]).delete)()
    await sync_to_async(PresenceVersion.objects.filter(user=users["bob"]).update)(online=False)
    for socket in (carol, bob):
        assert (await socket.recv_type("leave"))["user"] == bob_user
        assert (await socket.recv_type("join"))["user"] == bob_user
    assert await sync_to_async(Presence.objects.filter(user=users["bob"]).exists)()


async def test_heartbeat_announces_users_whose_server_died(connect, users, room, settings):
    """A presence row nobody refreshes (its process was killed) is swept and its user leaves."""
    await sync_to_async(services.presence_enter)(
        conversation_id=room.pk, user_id=users["carol"].pk, channel_name="specific.dead!process"
    )
    bob = await connect("bob", "/ws/rooms/general/")
    _, ready = await bob.until_ready()
    assert [user["username"] for user in ready["online"]] == ["bob", "carol"]
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.1}
    old = timezone.now() - timedelta(hours=1)
    await sync_to_async(Presence.objects.filter(user=users["carol"]).update)(seen_at=old)
    leave = await bob.recv_type("leave")
    assert leave["user"]["username"] == "carol"
    assert not await sync_to_async(Presence.objects.filter(user=users["carol"]).exists)()


# A burst of messages from one socket.


async def test_a_burst_is_stored_in_batches_and_echoed_and_delivered_in_order(connect, users, room, settings):
    settings.REALTIME = {**settings.REALTIME, "PENDING_MESSAGES_PER_SOCKET": 4}
    batches = []
    store = services._messages_store

    def recording(sender, conversation, items, exclude_channel):
        batches.append(len(items))
        return store(sender, conversation, items, exclude_channel)

    alice = await connect("alice", "/ws/rooms/general/")
    bob = await connect("bob", "/ws/rooms/general/")
    for socket in (alice, bob):
        await socket.until_ready()
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
    bob = await connect("bob", "/ws/rooms/general/")
    for socket in (alice, bob):
        await socket.until_ready()
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

    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    with (
        mock.patch("dm.services._messages_store", slow),
        mock.patch("social.realtime.consumers.session_still_valid", return_value=False),
    ):
        for n in range(3):
            await alice.send({"type": "message", "body": f"m{n}"})
        await asyncio.get_running_loop().run_in_executor(None, storing.wait, 2)
        await asyncio.sleep(0.1)  # the socket reads the other two meanwhile
        await get_channel_layer().group_send(control_group(users["alice"].pk), {"type": protocol.EVENT_SESSION_CHECK})
        bodies = [(await alice.recv_type("message", timeout=5))["message"]["body"] for _ in range(3)]
        assert await alice.closed_with() == protocol.CLOSE_REAUTHENTICATE
    assert bodies == ["m0", "m1", "m2"]
    assert await message_count() == 3


async def test_an_announcement_older_than_one_already_seen_is_dropped(connect, users, room):
    """A sweeper's leave can reach Redis after the swept user's join back (two processes)."""
    bob = await connect("bob", "/ws/rooms/general/")
    _, ready = await bob.until_ready()
    assert [user["username"] for user in ready["online"]] == ["bob"]
    alice = {"id": users["alice"].pk, "username": "alice"}

    async def announce(frame, version):
        event = protocol.relay_event(frame, sender=alice["id"], presence=frame["type"], presence_version=version)
        await get_channel_layer().group_send(room_group(room.pk), event)

    await announce(protocol.join_frame(alice), 7)
    await announce(protocol.leave_frame(alice), 6)  # decided before the join, arrived after it
    assert await bob.recv() == {"type": "join", "user": alice}
    assert await bob.silent()
    await announce(protocol.leave_frame(alice), 8)
    assert await bob.recv() == {"type": "leave", "user": alice}
