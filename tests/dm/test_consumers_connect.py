"""Opening the chat sockets: ready frames, refusals and close codes, resuming with ?after=."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm.models import Block, Conversation, Membership

pytestmark = pytest.mark.django_db(transaction=True)


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
