"""The per-user socket cap across two processes: it keeps counting, and a SIGKILLed process's slots free up."""

import asyncio

import pytest

from tests.faults.conftest import needs_shared_layer
from tests.support.clients import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), needs_shared_layer]

CAP = {"WS_MAX_SOCKETS_PER_USER": "3", "WS_PRESENCE_STALE_SECONDS": "3", "WS_HEARTBEAT_SECONDS": "1"}


@pytest.fixture
def cookie(make_user, cookie_for):
    return cookie_for(make_user("alice"))


async def test_cap_holds_across_processes_over_time_and_frees_a_killed_process(start_server, cookie):
    a, b = start_server("A", **CAP), start_server("B", **CAP)
    opened = []
    for server in (a, a, b):
        client = await WsClient.open(server, "/ws/notifications/", cookie=cookie)
        await client.until_ready()
        opened.append(client)
    # Well past the registry's stale age: the open sockets must still count.
    await asyncio.sleep(4.5)
    refused = await WsClient.open(b, "/ws/notifications/", cookie=cookie)
    assert await refused.closed_with() == 4429

    a.kill()
    # A's two sockets stop refreshing their entries and stop counting.
    await asyncio.sleep(4)
    for _ in range(2):
        client = await WsClient.open(b, "/ws/notifications/", cookie=cookie)
        await client.until_ready()
        opened.append(client)
    third = await WsClient.open(b, "/ws/notifications/", cookie=cookie)
    assert await third.closed_with() == 4429
    for client in opened[2:]:
        await client.close()
