"""A socket that never reads is closed once the server holds WS_MAX_BUFFERED_BYTES for it; nothing is lost.

The attack: a member whose client stops reading (a 4 KiB receive buffer, no
reads) but sends a typing frame now and then, which keeps daphne's keepalive
happy, while others talk. Before, the server queued everything for it.
"""

import asyncio

import pytest
import websockets

from dm import services
from tests.support.clients import WsClient

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CAP = 256 * 1024
LIMITS = {"WS_RATE_PER_SECOND": "1000", "WS_RATE_BURST": "1000", "WS_USER_RATE_PER_SECOND": "2000"}


@pytest.fixture
def room(users):
    room = services.room_create(creator=users["alice"], name="Busy", slug="busy", private=False)
    for name in ("bob", "carol"):
        services.room_join(user=users[name], conversation=room)
    return room


async def test_a_socket_that_never_reads_is_closed_at_the_cap_and_resumes_everything(start_server, cookies, room):
    server = start_server("capped", WS_MAX_BUFFERED_BYTES=str(CAP), **LIMITS)
    stalled = await WsClient.open(server, "/ws/rooms/busy/", cookie=cookies["carol"], max_queue=1, receive_buffer=4096)
    fast = await WsClient.open(server, "/ws/rooms/busy/", cookie=cookies["bob"])
    await fast.until_ready()
    sender = await WsClient.open(server, "/ws/rooms/busy/", cookie=cookies["alice"])
    await sender.until_ready()
    # More than the kernel's loopback buffers (~4 MiB) and the cap together,
    # and within one resume replay (500).
    bodies = [f"{n} " + "€" * 3900 for n in range(480)]
    for n, body in enumerate(bodies):
        await sender.send({"type": "message", "body": body, "client_id": f"m{n}"})
        if n % 100 == 0:
            # What the attacker sends: frames that keep the connection looking alive.
            await stalled.send({"type": "typing"})
    received = []
    while len(received) < len(bodies):
        frame = await fast.recv(timeout=20)
        if frame["type"] == "message":
            received.append(frame["message"])
    assert [message["body"] for message in received] == bodies

    # The stalled client reads at last: what was in flight (none of it, when the
    # kernel discards it on the reset), then the end of the connection.
    got = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            frame = await stalled.recv(timeout=20)
            if frame["type"] == "message":
                got.append(frame["message"]["id"])
    assert (closed.value.rcvd.code if closed.value.rcvd else 1006) in (4008, 1006)
    assert len(got) < len(bodies)

    # It resumes from what it has and converges: every message once, in order.
    after = got[-1] if got else 0
    again = await WsClient.open(server, f"/ws/rooms/busy/?after={after}", cookie=cookies["carol"])
    replay, ready = await again.until_ready()
    assert "truncated" not in ready
    assert got + [frame["message"]["id"] for frame in replay] == [message["id"] for message in received]


async def test_a_slow_socket_under_the_cap_is_kept(start_server, cookies, room):
    server = start_server("roomy", WS_MAX_BUFFERED_BYTES=str(64 * 1024 * 1024), **LIMITS)
    slow = await WsClient.open(server, "/ws/rooms/busy/", cookie=cookies["carol"], max_queue=1, receive_buffer=4096)
    sender = await WsClient.open(server, "/ws/rooms/busy/", cookie=cookies["alice"])
    await sender.until_ready()
    for n in range(400):
        await sender.send({"type": "message", "body": f"{n} " + "x" * 3900})
    await asyncio.sleep(1)
    count = 0
    while count < 400:
        if (await slow.recv(timeout=20))["type"] == "message":
            count += 1
    assert count == 400
