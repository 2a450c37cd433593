"""Two server processes sharing Redis and the database: presence, messages and access checks cross over."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm import services
from tests.conftest import needs_redis
from tests.dm.test_e2e import post
from tests.support.clients import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.redis, needs_redis]


async def test_presence_messages_and_blocks_span_processes(daphne_server, start_server, users, cookies):
    other = start_server("dm-second")
    await sync_to_async(services.room_create)(creator=users["alice"], name="General", slug="general", private=False)
    alice = await WsClient.open(daphne_server, "/ws/rooms/general/", cookie=cookies["alice"])
    await alice.until_ready()
    bob_a = await WsClient.open(daphne_server, "/ws/rooms/general/", cookie=cookies["bob"])
    await bob_a.until_ready()
    assert (await alice.recv())["type"] == "join"
    bob_b = await WsClient.open(other, "/ws/rooms/general/", cookie=cookies["bob"])
    _, ready = await bob_b.until_ready()
    assert [u["username"] for u in ready["online"]] == ["alice", "bob"]
    assert await alice.silent(0.3)  # bob's tab on the other process is not a second join

    await bob_b.send({"type": "message", "body": "from the other process"})
    for socket in (alice, bob_a, bob_b):
        assert (await socket.recv())["message"]["body"] == "from the other process"

    await bob_a.close()
    assert await alice.silent(0.3)
    await bob_b.close()
    assert (await alice.recv())["type"] == "leave"
    await alice.close()

    # A block made through one process closes the DM socket served by the other at once.
    alice_dm = await WsClient.open(other, "/ws/dm/bob/", cookie=cookies["alice"])
    await alice_dm.until_ready()
    assert await post(daphne_server, "/messages/alice/block/", cookies["bob"], "action=block") == 302
    assert await alice_dm.closed_with() == 4403
