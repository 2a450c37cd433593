"""The per-user socket cap holds for as long as the sockets are open, and connect churn is limited."""

import asyncio

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def realtime(settings, **overrides):
    return {**settings.REALTIME, **overrides}


async def test_cap_still_counts_sockets_opened_long_ago(settings, connect, users):
    # Registry entries count for PRESENCE_STALE_SECONDS; open sockets must keep theirs fresh.
    settings.REALTIME = realtime(settings, MAX_SOCKETS_PER_USER=3, PRESENCE_STALE_SECONDS=1, HEARTBEAT_SECONDS=0.2)
    for _ in range(3):
        await (await connect("alice", "/ws/notifications/")).until_ready()
    await asyncio.sleep(1.6)
    extra = await connect("alice", "/ws/notifications/")
    error = await extra.recv()
    assert error["code"] == "forbidden" and "open sockets" in error["message"]
    assert await extra.closed_with() == 4429


async def test_closed_sockets_free_their_slots(settings, connect, users):
    settings.REALTIME = realtime(settings, MAX_SOCKETS_PER_USER=2)
    first = await connect("alice", "/ws/notifications/")
    await first.until_ready()
    await (await connect("alice", "/ws/notifications/")).until_ready()
    await first.close()
    await (await connect("alice", "/ws/notifications/")).until_ready()


async def test_connecting_too_often_is_refused_with_4429(settings, connect, users):
    settings.REALTIME = realtime(settings, CONNECTS_PER_MINUTE=5)
    for _ in range(5):
        socket = await connect("alice", "/ws/notifications/")
        await socket.until_ready()
        await socket.close()
    refused = await connect("alice", "/ws/notifications/")
    assert "connections a minute" in (await refused.recv())["message"]
    assert await refused.closed_with() == 4429
    # Another user is not affected.
    await (await connect("bob", "/ws/notifications/")).until_ready()
