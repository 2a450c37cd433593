"""A long outbox is resent at a pace the flood limit allows: every message once, in order, the socket kept."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import BROWSER_TESTS, DESKTOP
from tests.browser.helpers import chat_open, send_message

pytestmark = BROWSER_TESTS
QUEUED = 30  # more than the server's burst of 20 frames plus its 5 rate_limited strikes


async def test_thirty_messages_typed_offline_all_arrive_once_in_order(browsing, users):
    bob = await browsing.open(users["bob"], "/messages/alice/", viewport=DESKTOP)
    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=DESKTOP)
    await chat_open(alice)
    await chat_open(bob)
    network = {"down": True}

    async def route(socket):
        if network["down"]:
            await socket.close(code=1006)
            return
        socket.connect_to_server()

    await alice.route_web_socket("**/ws/dm/**", route)
    await alice.reload()
    bodies = [f"queued {n}" for n in range(QUEUED)]
    for body in bodies:
        await send_message(alice, body)
    await expect(alice.locator(".message.pending")).to_have_count(QUEUED)

    network["down"] = False
    await alice.reload()
    await chat_open(alice)
    await expect(bob.locator(".message[data-id] .body")).to_have_text(bodies, timeout=15_000)
    await expect(alice.locator(".message.pending")).to_have_count(0, timeout=15_000)
    await expect(alice.locator("#connection-status")).to_be_hidden()
