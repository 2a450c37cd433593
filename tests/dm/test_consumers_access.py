"""Losing access while connected: blocks, removal from a room, the heartbeat's access check."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm import services
from dm.models import Block, Membership
from tests.dm.helpers import message_count

pytestmark = pytest.mark.django_db(transaction=True)


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
