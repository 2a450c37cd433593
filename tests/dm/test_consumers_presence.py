"""Who is online in a room: join and leave per tab, heartbeats, sweeps, out-of-order announcements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from dm import services
from dm.models import Presence, PresenceVersion
from social.realtime import protocol
from social.realtime.groups import room_group
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


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


async def test_heartbeat_keeps_presence_fresh(connect, users, room, settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.1}
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    old = timezone.now() - timedelta(hours=1)
    await sync_to_async(Presence.objects.update)(seen_at=old)
    refreshed = sync_to_async(Presence.objects.filter(seen_at__gt=old).count)
    assert await wait_for(refreshed, what="a heartbeat refreshes bob's presence") == 1


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
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.1}
    bob = await connect("bob", "/ws/rooms/general/")
    _, ready = await bob.until_ready()
    assert [user["username"] for user in ready["online"]] == ["bob", "carol"]
    old = timezone.now() - timedelta(hours=1)
    await sync_to_async(Presence.objects.filter(user=users["carol"]).update)(seen_at=old)
    leave = await bob.recv_type("leave")
    assert leave["user"]["username"] == "carol"
    assert not await sync_to_async(Presence.objects.filter(user=users["carol"]).exists)()


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
