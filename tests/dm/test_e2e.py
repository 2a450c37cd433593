"""Chat against a real daphne process with real WebSocket clients."""

from __future__ import annotations

import asyncio
import http.client
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dm import services
from tests.dm.helpers import message_count
from tests.support.clients import WsClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _post(server: Any, path: str, cookie: str, form: str) -> int:
    """POST a form to the real server as a logged-in browser would (CSRF cookie + header)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/rooms/", headers={"Cookie": cookie})
    response = connection.getresponse()
    response.read()
    token = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
    headers = {
        "Cookie": f"{cookie}; csrftoken={token}",
        "X-CSRFToken": token,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    connection.request("POST", path, body=form, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


async def post(server: Any, path: str, cookie: str, form: str = "") -> int:
    return await asyncio.to_thread(_post, server, path, cookie, form)


async def test_full_dm_exchange(daphne_server, users, cookies):
    alice = await WsClient.open(daphne_server, "/ws/dm/bob/", cookie=cookies["alice"])
    bob = await WsClient.open(daphne_server, "/ws/dm/alice/", cookie=cookies["bob"])
    bob_bell = await WsClient.open(daphne_server, "/ws/notifications/", cookie=cookies["bob"])
    await alice.until_ready()
    await bob.until_ready()
    await bob_bell.recv_type("ready")

    await alice.send({"type": "message", "body": "hi bob", "client_id": "first"})
    echo = await alice.recv()
    assert echo["type"] == "message" and echo["message"]["client_id"] == "first"
    assert await bob.recv() == echo
    inbox = await bob_bell.recv_type("inbox")
    assert (inbox["unread"], inbox["message"]) == (1, echo["message"])

    await bob.send({"type": "typing"})
    assert (await alice.recv())["type"] == "typing"
    await bob.send({"type": "read", "message_id": echo["message"]["id"]})
    read = await alice.recv()
    assert (read["type"], read["user"]["username"], read["message_id"]) == ("read", "bob", echo["message"]["id"])
    assert (await bob_bell.recv_type("inbox"))["unread"] == 0
    assert (await bob.recv())["type"] == "read"  # bob's other tabs learn it too

    await alice.send({"type": "message", "body": "hi bob", "client_id": "first"})
    assert (await alice.recv())["message"] == echo["message"]
    assert await bob.silent(0.3)
    assert await message_count() == 1

    await bob.close()
    await alice.send({"type": "message", "body": "while you were away"})
    missed = (await alice.recv())["message"]
    bob = await WsClient.open(daphne_server, f"/ws/dm/alice/?after={echo['message']['id']}", cookie=cookies["bob"])
    replay, ready = await bob.until_ready()
    assert [frame["message"] for frame in replay] == [missed]
    assert ready["read"] == {"alice": 0, "bob": echo["message"]["id"]}
    for socket in (alice, bob, bob_bell):
        await socket.close()


async def test_room_with_three_users_presence_and_single_broadcast(daphne_server, users, cookies):
    room = await sync_to_async(services.room_create)(
        creator=users["alice"], name="General", slug="general", private=False
    )
    alice = await WsClient.open(daphne_server, "/ws/rooms/general/", cookie=cookies["alice"])
    _, ready = await alice.until_ready()
    assert ready["conversation"] == room.pk
    assert [u["username"] for u in ready["online"]] == ["alice"]

    bob_one = await WsClient.open(daphne_server, "/ws/rooms/general/", cookie=cookies["bob"])
    _, ready = await bob_one.until_ready()
    assert [u["username"] for u in ready["online"]] == ["alice", "bob"]
    assert await alice.recv() == {"type": "join", "user": {"id": users["bob"].pk, "username": "bob"}}
    bob_two = await WsClient.open(daphne_server, "/ws/rooms/general/", cookie=cookies["bob"])
    await bob_two.until_ready()
    carol = await WsClient.open(daphne_server, "/ws/rooms/general/", cookie=cookies["carol"])
    _, ready = await carol.until_ready()
    assert [u["username"] for u in ready["online"]] == ["alice", "bob", "carol"]
    frame = await alice.recv()
    assert frame["user"]["username"] == "carol", frame  # no second join for bob's second tab
    for socket in (bob_one, bob_two):
        frame = await socket.recv()
        assert frame["user"]["username"] == "carol", frame

    await carol.send({"type": "message", "body": "hello all"})
    for socket in (alice, bob_one, bob_two, carol):
        assert (await socket.recv())["message"]["body"] == "hello all"
    for socket in (alice, bob_one, bob_two, carol):
        assert await socket.silent(0.2)

    await bob_one.close()
    assert await alice.silent(0.3)
    await bob_two.close()
    assert await alice.recv() == {"type": "leave", "user": {"id": users["bob"].pk, "username": "bob"}}
    assert (await carol.recv())["type"] == "leave"
    await alice.close()
    await carol.close()


async def test_a_burst_of_room_messages_over_real_sockets_arrives_whole_and_in_order(daphne_server, users, cookies):
    await sync_to_async(services.room_create)(creator=users["alice"], name="Burst", slug="burst", private=False)
    bob = await WsClient.open(daphne_server, "/ws/rooms/burst/", cookie=cookies["bob"])
    await bob.until_ready()
    alice = await WsClient.open(daphne_server, "/ws/rooms/burst/", cookie=cookies["alice"])
    await alice.until_ready()
    # Within the default flood limits (a burst of 20).
    bodies = [f"quick {n}" for n in range(15)]
    for body in bodies:
        await alice.send({"type": "message", "body": body})
    echoes = [(await alice.recv_type("message"))["message"] for _ in bodies]
    assert [echo["body"] for echo in echoes] == bodies
    assert [(await bob.recv_type("message"))["message"] for _ in bodies] == echoes
    assert await bob.silent(0.3)
    assert await message_count() == len(bodies)
    for socket in (alice, bob):
        await socket.close()


async def test_private_room_refuses_non_members(daphne_server, users, cookies):
    await sync_to_async(services.room_create)(creator=users["alice"], name="Secret", slug="secret", private=True)
    carol = await WsClient.open(daphne_server, "/ws/rooms/secret/", cookie=cookies["carol"])
    assert await carol.closed_with() == 4403
    nowhere = await WsClient.open(daphne_server, "/ws/rooms/nowhere/", cookie=cookies["carol"])
    assert await nowhere.closed_with() == 4404


async def test_blocking_mid_conversation_closes_both_sockets(daphne_server, users, cookies):
    alice = await WsClient.open(daphne_server, "/ws/dm/bob/", cookie=cookies["alice"])
    bob = await WsClient.open(daphne_server, "/ws/dm/alice/", cookie=cookies["bob"])
    await alice.until_ready()
    await bob.until_ready()
    assert await post(daphne_server, "/messages/alice/block/", cookies["bob"], "action=block") == 302
    assert await alice.closed_with() == 4403
    assert await bob.closed_with() == 4403
    again = await WsClient.open(daphne_server, "/ws/dm/bob/", cookie=cookies["alice"])
    assert await again.closed_with() == 4403
    assert await message_count() == 0


async def test_removal_from_a_private_room_mid_conversation(daphne_server, users, cookies, add_member):
    room = await sync_to_async(services.room_create)(creator=users["alice"], name="Secret", slug="secret", private=True)
    await sync_to_async(add_member)(room, users["bob"])
    alice = await WsClient.open(daphne_server, "/ws/rooms/secret/", cookie=cookies["alice"])
    await alice.until_ready()
    bob = await WsClient.open(daphne_server, "/ws/rooms/secret/", cookie=cookies["bob"])
    await bob.until_ready()
    await alice.recv_type("join")
    assert await post(daphne_server, "/rooms/secret/members/bob/remove/", cookies["alice"]) == 302
    assert await bob.closed_with() == 4403
    assert (await alice.recv())["type"] == "leave"
    await alice.send({"type": "message", "body": "bob is gone"})
    assert (await alice.recv())["message"]["body"] == "bob is gone"
    await alice.close()


async def test_an_invitation_rings_the_bell_and_opening_the_room_accepts_it(daphne_server, users, cookies):
    await sync_to_async(services.room_create)(creator=users["alice"], name="Secret", slug="secret", private=True)
    bob_bell = await WsClient.open(daphne_server, "/ws/notifications/", cookie=cookies["bob"])
    await bob_bell.until_ready()
    assert await post(daphne_server, "/rooms/secret/members/", cookies["alice"], "username=bob") == 302
    notification = (await bob_bell.recv_type("notification"))["notification"]
    assert (notification["kind"], notification["url"]) == ("system", "/rooms/secret/")
    assert notification["text"] == "alice invited you to “Secret”"
    alice = await WsClient.open(daphne_server, "/ws/rooms/secret/", cookie=cookies["alice"])
    await alice.until_ready()
    bob = await WsClient.open(daphne_server, "/ws/rooms/secret/", cookie=cookies["bob"])
    await bob.until_ready()
    assert (await alice.recv_type("join"))["user"]["username"] == "bob"
    await alice.send({"type": "message", "body": "welcome, bob"})
    assert (await bob.recv_type("message"))["message"]["body"] == "welcome, bob"
    for socket in (alice, bob, bob_bell):
        await socket.close()


async def test_bad_frames_over_a_real_socket(daphne_server, users, cookies):
    alice = await WsClient.open(daphne_server, "/ws/dm/bob/", cookie=cookies["alice"])
    await alice.until_ready()
    cases = [
        ("{oops", "bad_json"),
        (b"\x01\x02", "bad_frame"),
        ({"type": "message", "body": ""}, "invalid"),
        ({"type": "message", "body": "x" * 4001}, "too_long"),
        ({"type": "nope"}, "unknown_type"),
        ({"type": "read", "message_id": "7"}, "invalid"),
        ({"type": "message", "body": "hi", "client_id": "c" * 65}, "too_long"),
    ]
    for frame, code in cases:
        await alice.send(frame)
        error = await alice.recv()
        assert (error["type"], error["code"]) == ("error", code), frame
    assert await message_count() == 0
    await alice.send({"type": "message", "body": "still open"})
    assert (await alice.recv())["type"] == "message"
    await alice.close()
