"""Typing indicators and read markers on the DM socket."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm.models import Conversation, Membership
from social.realtime.groups import user_group

pytestmark = pytest.mark.django_db(transaction=True)


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
