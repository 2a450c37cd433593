"""The heartbeat scheduler: one per event loop beats every live socket, and no failing or slow
beat stops the others (social/realtime/heartbeat.py)."""

import asyncio

import pytest

from social.realtime import heartbeat
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fast(settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.02}


class Socket:
    """A stand-in for a consumer: counts its beats; ``fail``/``hang``/``done`` change what a beat does."""

    def __init__(self, name, *, fail=False, hang=False, done=False):
        self.channel_name = name
        self.beats = 0
        self.fail = fail
        self.hang = hang
        self.done = done
        self.cancelled = False

    async def beat(self):
        self.beats += 1
        if self.fail:
            raise RuntimeError("database down")
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return not self.done


async def test_every_registered_socket_beats_again_and_again(fast):
    sockets = [Socket(f"s{i}") for i in range(5)]
    for socket in sockets:
        heartbeat.register(socket)
    await wait_for(lambda: all(socket.beats >= 3 for socket in sockets), what="every socket beat three times")
    for socket in sockets:
        heartbeat.unregister(socket)


async def test_an_unregistered_socket_is_forgotten_and_a_beat_in_progress_is_cancelled(fast):
    idle, hanging = Socket("idle"), Socket("hanging", hang=True)
    heartbeat.register(idle)
    heartbeat.register(hanging)
    await wait_for(lambda: idle.beats and hanging.beats, what="both beat")
    heartbeat.unregister(idle)
    heartbeat.unregister(hanging)
    scheduler = heartbeat.scheduler()
    assert not scheduler.entries
    await wait_for(lambda: hanging.cancelled, what="the running beat is cancelled")
    # With nobody left the scheduler's task ends.
    await asyncio.wait_for(scheduler.task, 5)
    beats = idle.beats
    later = Socket("later")
    heartbeat.register(later)
    await wait_for(lambda: later.beats >= 3, what="a socket registered later beats")
    assert idle.beats == beats
    heartbeat.unregister(later)


async def test_sockets_closed_as_their_beat_starts_leave_every_slot_free(settings):
    # A close in the same loop tick as the start of its beat cancels a task that never ran.
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.001}
    scheduler = heartbeat.scheduler()
    churned = [Socket(f"churn{i}") for i in range(200)]
    for socket in churned:
        heartbeat.register(socket)
    closed_unstarted = 0
    for _ in range(20_000):
        if closed_unstarted > heartbeat.MAX_CONCURRENT_BEATS:
            break
        await asyncio.sleep(0)
        for socket in list(scheduler.running):
            closed_unstarted += socket.beats == 0
            heartbeat.unregister(socket)
            heartbeat.register(socket)
    assert closed_unstarted > heartbeat.MAX_CONCURRENT_BEATS
    for socket in churned:
        heartbeat.unregister(socket)
    later = Socket("later")
    heartbeat.register(later)
    await wait_for(lambda: later.beats >= 3, what="a socket registered after the churn beats")
    heartbeat.unregister(later)


async def test_a_beat_that_hangs_past_the_interval_is_given_up_and_tried_again(settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.05}
    hanging = Socket("hanging", hang=True)
    heartbeat.register(hanging)
    await wait_for(lambda: hanging.beats >= 3, what="the hanging socket beats again after each time-out")
    assert hanging.cancelled
    heartbeat.unregister(hanging)


async def test_a_failing_or_hanging_beat_does_not_stop_the_others(fast):
    failing, hanging, healthy = Socket("failing", fail=True), Socket("hanging", hang=True), Socket("healthy")
    for socket in (failing, hanging, healthy):
        heartbeat.register(socket)
    # The failing socket keeps its place: it beats again next time.
    await wait_for(lambda: failing.beats >= 3 and healthy.beats >= 3, what="beats go on")
    for socket in (failing, hanging, healthy):
        heartbeat.unregister(socket)


async def test_a_socket_whose_beat_closed_it_beats_no_more(fast):
    closing, other = Socket("closing", done=True), Socket("other")
    heartbeat.register(closing)
    heartbeat.register(other)
    await wait_for(lambda: other.beats >= 3, what="the other socket beats on")
    assert closing.beats == 1
    assert closing not in heartbeat.scheduler().entries
    heartbeat.unregister(other)


async def test_a_bell_socket_is_beaten_while_open_and_forgotten_once_closed(connect, users, fast):
    socket = await connect("alice", "/ws/notifications/")
    await socket.until_ready()
    scheduler = heartbeat.scheduler()
    assert [consumer.user_id for consumer in scheduler.entries] == [users["alice"].pk]
    await socket.close()
    await wait_for(lambda: not scheduler.entries, what="the closed socket is unregistered")
