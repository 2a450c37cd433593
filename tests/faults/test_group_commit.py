"""A process killed while it stores a busy room's tick loses nothing it acknowledged."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from dm.models import Message
from tests.faults.conftest import needs_shared_layer
from tests.support.clients import WsClient
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), needs_shared_layer]


async def test_killing_a_process_mid_tick_loses_no_acknowledged_message(two_servers, make_user, cookie_for, make_room):
    a, b = two_servers
    senders = [await sync_to_async(make_user)(f"sender{n}") for n in range(6)]
    watcher_user = await sync_to_async(make_user)("watcher")
    await sync_to_async(make_room)("busy", watcher_user, *senders)
    sockets = []
    for sender in senders:
        socket = await WsClient.open(a, "/ws/rooms/busy/", cookie=await sync_to_async(cookie_for)(sender))
        await socket.until_ready()
        sockets.append(socket)
    watcher = await WsClient.open(b, "/ws/rooms/busy/", cookie=await sync_to_async(cookie_for)(watcher_user))
    await watcher.until_ready()
    acknowledged: set[str] = set()

    async def keep_sending(index: int, socket: WsClient) -> None:
        async def reader() -> None:
            while True:
                frame = await socket.recv(10)
                message = frame.get("message") if frame["type"] == "message" else None
                if message and message["sender"]["id"] == senders[index].pk:
                    acknowledged.add(message["client_id"])

        reading = asyncio.create_task(reader())
        try:
            for n in range(10_000):
                await socket.send({"type": "message", "body": f"{index}:{n}", "client_id": f"{index}-{n}"})
                await asyncio.sleep(0.01)
        except Exception:
            pass
        await asyncio.gather(reading, return_exceptions=True)

    senders_done = [asyncio.create_task(keep_sending(index, socket)) for index, socket in enumerate(sockets)]
    await wait_for(lambda: len(acknowledged) >= 150, timeout=30, what="150 messages acknowledged")
    a.kill()
    await asyncio.wait_for(asyncio.gather(*senders_done), 30)

    stored = set(await sync_to_async(lambda: list(Message.objects.values_list("client_id", flat=True)))())
    assert acknowledged <= stored
    # The watcher on the other process ends with every stored message, once (resuming what it missed).
    seen: dict[int, str] = {}
    while True:
        try:
            frame = await watcher.recv(1)
        except TimeoutError:
            break
        if frame["type"] == "message":
            seen[frame["message"]["id"]] = frame["message"]["client_id"]
    resume = f"/ws/rooms/busy/?after={max(seen)}"
    watcher = await WsClient.open(b, resume, cookie=await sync_to_async(cookie_for)(watcher_user))
    replay, _ = await watcher.until_ready()
    for frame in replay:
        assert frame["message"]["id"] not in seen
        seen[frame["message"]["id"]] = frame["message"]["client_id"]
    assert set(seen.values()) == stored and len(seen) == len(stored)
