"""Messages that change across two daphne processes on Redis and the database: a client whose
process is SIGKILLed while others edit, delete and react converges through ``?since=`` on the
other process, each message once in its final state; and racing changes from clients on both
processes end in one state that every client sees."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from tests.dm.test_e2e_changes import echo_of, run_races
from tests.faults.conftest import needs_shared_layer
from tests.support.clients import WsClient
from tests.support.http import Browserish

pytestmark = [pytest.mark.django_db(transaction=True), needs_shared_layer]


@pytest.fixture
def people(make_user, cookie_for):
    users = {name: make_user(name) for name in ("alice", "bob", "carol")}
    return users, {name: cookie_for(user) for name, user in users.items()}


async def test_a_client_killed_with_its_process_converges_by_version_on_the_other(two_servers, people, make_room):
    a, b = two_servers
    users, cookies = people
    await sync_to_async(make_room)("lobby", users["alice"], users["bob"], users["carol"])
    alice = await WsClient.open(b, "/ws/rooms/lobby/", cookie=cookies["alice"])
    carol = await WsClient.open(a, "/ws/rooms/lobby/", cookie=cookies["carol"])
    await alice.until_ready()
    await carol.until_ready()

    sent = []
    for n in range(6):
        await alice.send({"type": "message", "body": f"m{n}", "client_id": f"m{n}"})
        sent.append(await echo_of(alice, f"m{n}"))
    # carol's copy: everything so far, and the highest version she saw.
    seen = {}
    while len(seen) < len(sent):
        message = (await carol.recv_type("message"))["message"]
        seen[message["id"]] = message
    since = max(message["version"] for message in seen.values())

    a.kill()
    assert await carol.closed_with() == 1006
    changes = [
        {"type": "edit", "message_id": sent[0]["id"], "body": "m0, edited"},
        {"type": "react", "message_id": sent[1]["id"], "emoji": "👍"},
        {"type": "delete", "message_id": sent[2]["id"]},
        {"type": "edit", "message_id": sent[0]["id"], "body": "m0, edited twice"},
        {"type": "react", "message_id": sent[1]["id"], "emoji": "🎉"},
    ]
    for frame in changes:
        await alice.send(frame)
        await alice.recv_type("message_update")
    await alice.send({"type": "message", "body": "new while carol was away", "client_id": "late"})
    late = await echo_of(alice, "late")
    await alice.send({"type": "edit", "message_id": late["id"], "body": "new, edited"})
    await alice.recv_type("message_update")

    carol = await WsClient.open(b, f"/ws/rooms/lobby/?since={since}", cookie=cookies["carol"])
    replay, _ = await carol.until_ready()
    kinds = [(frame["type"], frame["message"]["id"]) for frame in replay]
    assert len({message_id for _, message_id in kinds}) == len(kinds) == 4
    assert ("message", late["id"]) in kinds
    assert all(kind == "message_update" for kind, message_id in kinds if message_id != late["id"])
    for frame in replay:
        seen[frame["message"]["id"]] = frame["message"]
    status, body = await asyncio.to_thread(Browserish(b, cookies["carol"]).get, "/api/rooms/lobby/messages/")
    assert status == 200
    assert seen == {message["id"]: message for message in json.loads(body)["results"]}
    assert seen[sent[0]["id"]]["body"] == "m0, edited twice"
    assert [r["emoji"] for r in seen[sent[1]["id"]]["reactions"]] == ["👍", "🎉"]
    assert seen[sent[2]["id"]]["deleted"] is True
    assert seen[late["id"]]["body"] == "new, edited"
    await alice.close()
    await carol.close()


async def test_racing_changes_from_two_processes_end_in_one_state(two_servers, people):
    users, cookies = people
    await run_races(list(two_servers), users, cookies)
