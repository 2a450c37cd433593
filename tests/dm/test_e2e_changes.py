"""Messages that change, against a real daphne with real WebSocket clients: every frame and refusal,
the resume by version, and races between clients ending in one state that every client sees."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dm import services
from dm.models import Message, Reaction
from tests.support.clients import WsClient
from tests.support.http import Browserish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def opened(server: Any, path: str, cookie: str) -> WsClient:
    client = await WsClient.open(server, path, cookie=cookie)
    await client.until_ready()
    return client


async def echo_of(client: WsClient, client_id: str) -> dict[str, Any]:
    """Skip frames until the echo of the client's own message with this client_id."""
    while (frame := await client.recv_type("message"))["message"]["client_id"] != client_id:
        pass
    return frame["message"]


async def update_where(client: WsClient, wanted: Any) -> dict[str, Any]:
    """Skip frames until a ``message_update`` whose message satisfies ``wanted``."""
    while not wanted(message := (await client.recv_type("message_update"))["message"]):
        pass
    return message


async def final_states(clients: list[WsClient], message_id: int) -> list[dict[str, Any] | None]:
    """Read each client until it is quiet; per client the copy of the message with the highest version."""
    states = []
    for client in clients:
        best = None
        while True:
            try:
                frame = await client.recv(0.6)
            except TimeoutError:
                break
            if frame["type"] not in ("message", "message_update"):
                # A change refused because another won the race (an edit of a deleted message).
                continue
            message = frame["message"]
            if message["id"] == message_id and (best is None or message["version"] > best["version"]):
                best = message
        states.append(best)
    return states


async def history(server: Any, cookie: str, path: str) -> dict[int, dict[str, Any]]:
    status, body = await asyncio.to_thread(Browserish(server, cookie).get, path)
    assert status == 200
    return {message["id"]: message for message in json.loads(body)["results"]}


async def test_every_change_frame_and_refusal_on_a_real_server(daphne_server, users, cookies, room):
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    alice = await opened(daphne_server, "/ws/rooms/general/", cookies["alice"])
    bob = await opened(daphne_server, "/ws/rooms/general/", cookies["bob"])

    await bob.send({"type": "message", "body": "first @alice", "client_id": "b1"})
    first = await echo_of(bob, "b1")
    await alice.send({"type": "message", "body": "an answer", "client_id": "a1", "reply_to": first["id"]})
    reply = await echo_of(alice, "a1")
    assert reply["reply_to"]["excerpt"] == "first @alice"

    await bob.send({"type": "edit", "message_id": first["id"], "body": "first, edited"})
    edited = (await alice.recv_type("message_update"))["message"]
    requoted = (await alice.recv_type("message_update"))["message"]
    assert (edited["body"], requoted["reply_to"]["excerpt"]) == ("first, edited", "first, edited")
    await alice.send({"type": "react", "message_id": first["id"], "emoji": "🎉"})
    reacted = await update_where(bob, lambda message: message["reactions"])
    assert reacted["reactions"] == [{"emoji": "🎉", "count": 1, "users": [users["alice"].pk]}]

    refusals = [
        ({"type": "edit", "message_id": first["id"], "body": "not mine"}, "forbidden"),
        ({"type": "delete", "message_id": first["id"]}, "forbidden"),
        ({"type": "react", "message_id": first["id"], "emoji": "tada"}, "invalid"),
        ({"type": "edit", "message_id": 10**15, "body": "x"}, "invalid"),
    ]
    # carol is neither the author nor the room's owner (alice is).
    await sync_to_async(services.room_join)(user=users["carol"], conversation=room)
    carol = await opened(daphne_server, "/ws/rooms/general/", cookies["carol"])
    for frame, code in refusals:
        await carol.send(frame)
        error = await carol.recv_type("error")
        assert (error["code"], error["message_id"]) == (code, frame["message_id"]), frame
    await carol.send({"type": "message", "body": "carol still connected", "client_id": "c1"})
    assert (await echo_of(carol, "c1"))["body"] == "carol still connected"

    # The owner deletes bob's message: a tombstone for everyone, and the reply's quote follows.
    await alice.send({"type": "delete", "message_id": first["id"]})
    tombstone = await update_where(bob, lambda message: message["deleted"])
    assert (tombstone["id"], tombstone["body"], tombstone["reactions"]) == (first["id"], "", [])
    requoted = await update_where(bob, lambda message: message["id"] == reply["id"])
    assert requoted["reply_to"]["deleted"] is True

    now = await history(daphne_server, cookies["bob"], "/api/rooms/general/messages/")
    assert now[first["id"]]["deleted"] is True and now[reply["id"]]["reply_to"]["deleted"] is True

    # bob resumes by version from before all of it.
    since = f"/ws/rooms/general/?since={first['version']}"
    bob_again = await WsClient.open(daphne_server, since, cookie=cookies["bob"])
    replay, _ = await bob_again.until_ready()
    ids = [frame["message"]["id"] for frame in replay]
    assert len(ids) == len(set(ids))
    assert {frame["message"]["id"]: frame["message"] for frame in replay} == {
        key: value for key, value in now.items() if key in ids
    }
    for client in (alice, bob, carol, bob_again):
        await client.close()


async def race(clients: list[WsClient], frames: list[dict[str, Any]]) -> None:
    await asyncio.gather(*(client.send(frame) for client, frame in zip(clients, frames, strict=True)))


async def converge(server: Any, cookie: str, clients: list[WsClient], message_id: int) -> dict[str, Any]:
    """Every client's final copy is the stored state, which the history returns."""
    states = await final_states(clients, message_id)
    stored = (await history(server, cookie, "/api/messages/bob/"))[message_id]
    assert states == [stored] * len(clients)
    return stored


async def dm_clients(servers: list[Any], cookies: dict[str, str]) -> tuple[WsClient, WsClient, WsClient]:
    """Two alice tabs and bob, spread over the given servers."""
    alice_one = await opened(servers[0], "/ws/dm/bob/", cookies["alice"])
    alice_two = await opened(servers[-1], "/ws/dm/bob/", cookies["alice"])
    bob = await opened(servers[0], "/ws/dm/alice/", cookies["bob"])
    return alice_one, alice_two, bob


async def run_races(servers: list[Any], users: dict[str, Any], cookies: dict[str, str]) -> None:
    alice_one, alice_two, bob = await dm_clients(servers, cookies)
    everyone = [alice_one, alice_two, bob]

    async def fresh(body: str) -> int:
        await alice_one.send({"type": "message", "body": body, "client_id": body})
        message_id = (await echo_of(alice_one, body))["id"]
        await final_states(everyone, message_id)
        return message_id

    # alice and bob react with the same emoji at once: both count, each once.
    target = await fresh("react at once")
    await race([alice_one, bob], [{"type": "react", "message_id": target, "emoji": "👍"}] * 2)
    (thumbs,) = (await converge(servers[0], cookies["alice"], everyone, target))["reactions"]
    assert (thumbs["count"], set(thumbs["users"])) == (2, {users["alice"].pk, users["bob"].pk})
    # Two tabs of alice toggle the same emoji at once: two toggles, one after the other.
    target = await fresh("toggle twice")
    await race([alice_one, alice_two], [{"type": "react", "message_id": target, "emoji": "🎉"}] * 2)
    assert (await converge(servers[0], cookies["alice"], everyone, target))["reactions"] == []
    # An edit racing a delete: a tombstone either way (an edit after the delete is refused).
    target = await fresh("edit or delete")
    await race(
        [alice_one, alice_two],
        [{"type": "edit", "message_id": target, "body": "edited"}, {"type": "delete", "message_id": target}],
    )
    assert (await converge(servers[0], cookies["alice"], everyone, target))["deleted"] is True
    # A reaction on a message being deleted: no reaction survives the tombstone.
    target = await fresh("react while deleting")
    await race(
        [bob, alice_two],
        [{"type": "react", "message_id": target, "emoji": "😮"}, {"type": "delete", "message_id": target}],
    )
    state = await converge(servers[0], cookies["alice"], everyone, target)
    assert (state["deleted"], state["reactions"]) == (True, [])
    assert not await sync_to_async(Reaction.objects.filter(message_id=target).exists)()
    # The same react frame replayed: it toggles, so the count is never 2 for one user, never negative.
    target = await fresh("replayed")
    frame = {"type": "react", "message_id": target, "emoji": "❤️"}
    for _ in range(3):
        await bob.send(frame)
    state = await converge(servers[0], cookies["alice"], everyone, target)
    assert state["reactions"] == [{"emoji": "❤️", "count": 1, "users": [users["bob"].pk]}]
    counts = await sync_to_async(lambda: Reaction.objects.filter(message_id=target).count())()
    assert counts == 1
    versions = await sync_to_async(lambda: list(Message.objects.values_list("version", flat=True)))()
    assert len(versions) == len(set(versions))
    for client in everyone:
        await client.close()


async def test_racing_changes_end_in_one_state_every_client_sees(daphne_server, users, cookies):
    await run_races([daphne_server], users, cookies)
