"""Connect/close churn costs the room's members no stream of join/leave frames."""

import asyncio

import pytest

from dm import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def general(users):
    return services.room_create(creator=users["carol"], name="General", slug="general", private=False)


async def test_churn_within_the_grace_period_sends_one_join_and_one_leave(settings, connect, general):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEAVE_GRACE_MS": 1500}
    carol = await connect("carol", "/ws/rooms/general/")
    await carol.until_ready()
    for _ in range(20):
        bob = await connect("bob", "/ws/rooms/general/")
        await bob.until_ready()
        await bob.close()
    frames = await carol.drain(quiet=2.5)
    assert [(frame["type"], frame["user"]["username"]) for frame in frames] == [("join", "bob"), ("leave", "bob")]


async def test_a_reload_within_the_grace_period_is_no_news(settings, connect, general):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEAVE_GRACE_MS": 800}
    carol = await connect("carol", "/ws/rooms/general/")
    await carol.until_ready()
    bob = await connect("bob", "/ws/rooms/general/")
    await bob.until_ready()
    assert (await carol.recv_type("join"))["user"]["username"] == "bob"
    await bob.close()
    again = await connect("bob", "/ws/rooms/general/")
    _, ready = await again.until_ready()
    assert {user["username"] for user in ready["online"]} == {"bob", "carol"}
    assert await carol.silent(1.5)


async def test_churn_for_longer_than_the_grace_period_still_sends_one_join_and_one_leave(settings, connect, general):
    """Each close restarts the grace: a timer from an earlier close must not announce a leave
    while the user is only between two of their connects."""
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEAVE_GRACE_MS": 600}
    carol = await connect("carol", "/ws/rooms/general/")
    await carol.until_ready()
    for _ in range(8):
        bob = await connect("bob", "/ws/rooms/general/")
        await bob.until_ready()
        await asyncio.sleep(0.1)
        await bob.communicator.disconnect()
        await asyncio.sleep(0.3)
    frames = await carol.drain(quiet=1.5)
    assert [(frame["type"], frame["user"]["username"]) for frame in frames] == [("join", "bob"), ("leave", "bob")]
