"""Handshake admission: a process works on a bounded number of handshakes and refuses, before any
work, one that waited too long; each socket frees its slot once live or refused."""

import asyncio

import pytest

from social.realtime.admission import SCOPE_KEY, HandshakeAdmission
from tests.support.sockets import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def one_at_a_time(settings):
    """One handshake in flight per process; a waiting one gives up after 200 ms."""
    settings.REALTIME = {**settings.REALTIME, "HANDSHAKES_IN_FLIGHT": 1, "HANDSHAKE_PATIENCE_MS": 200}


class SlowHandshake:
    """An application that accepts only once the test lets it (a handshake busy with its lookups),
    then frees its slot."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.started = 0

    async def __call__(self, scope, receive, send):
        self.started += 1
        assert (await receive())["type"] == "websocket.connect"
        await self.go.wait()
        await send({"type": "websocket.accept"})
        scope[SCOPE_KEY]()  # live: as RealtimeConsumer does once its ready frame is out
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def slot_taken():
    """A SlowHandshake behind admission, and a first handshake holding the only slot until ``go``."""
    inner = SlowHandshake()
    app = HandshakeAdmission(inner)
    first = communicator("/ws/notifications/", app=app)
    first_connecting = asyncio.ensure_future(first.connect(timeout=5))
    await asyncio.sleep(0.05)
    return inner, app, first, first_connecting


async def test_a_handshake_that_waits_too_long_is_refused_without_any_work(one_at_a_time):
    inner, app, first, first_connecting = await slot_taken()
    second = communicator("/ws/notifications/", app=app)
    connected, _ = await second.connect(timeout=2)
    assert not connected
    assert inner.started == 1
    inner.go.set()
    assert (await first_connecting)[0]
    await first.disconnect()


async def test_a_waiting_handshake_goes_ahead_when_a_slot_frees_in_time(one_at_a_time):
    inner, app, first, first_connecting = await slot_taken()
    second = communicator("/ws/notifications/", app=app)
    second_connecting = asyncio.ensure_future(second.connect(timeout=5))
    await asyncio.sleep(0.05)
    assert inner.started == 1
    inner.go.set()
    assert (await first_connecting)[0]
    assert (await second_connecting)[0]
    assert inner.started == 2
    await first.disconnect()
    await second.disconnect()


async def test_a_client_that_leaves_while_it_waits_costs_no_work(one_at_a_time):
    inner, app, first, first_connecting = await slot_taken()
    leaver = communicator("/ws/notifications/", app=app)
    await leaver.send_input({"type": "websocket.connect"})
    await asyncio.sleep(0.05)
    await leaver.send_input({"type": "websocket.disconnect", "code": 1001})
    await leaver.wait(1)
    inner.go.set()
    assert (await first_connecting)[0]
    later = communicator("/ws/notifications/", app=app)
    assert (await later.connect(timeout=2))[0]
    assert inner.started == 2  # the first and the later one, never the one that left
    await first.disconnect()
    await later.disconnect()


async def test_a_live_socket_and_a_refused_one_free_their_slots(one_at_a_time, connect):
    bell = await connect("alice", "/ws/notifications/")
    assert (await bell.recv())["type"] == "ready"
    anonymous = communicator("/ws/notifications/")
    assert (await anonymous.connect())[0]
    assert (await anonymous.receive_output())["code"] == 4401
    # alice's socket stays open, the anonymous one was refused: neither holds the only slot.
    window = await connect("bob", "/ws/dm/alice/")
    assert (await window.recv())["type"] == "ready"
