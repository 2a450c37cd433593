"""A server restart under an open DM window: it says so, reconnects by itself, misses nothing."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm.models import Message
from tests.browser.conftest import BROWSER_TESTS

pytestmark = BROWSER_TESTS
# Reconnecting uses back-off with jitter; after a few failed attempts the next one
# can be up to ~8 s away, so waiting for it gets more than the default 10 s.
RECONNECT_MS = 30_000


async def test_dm_window_survives_server_restart(browsing, users, start_server):
    # Alice's server is one of the test's own, so it can be stopped; Bob stays on the
    # shared server (another process on the same database) and sends during the outage.
    alices_server = await asyncio.to_thread(start_server, "dm-restart")
    alice = await browsing.open(users["alice"], "/messages/bob/", server=alices_server)
    chat = alice.locator("#chat")
    await expect(chat).to_have_attribute("data-state", "open")
    box = alice.get_by_role("textbox", name="Message")
    await box.fill("Before the restart")
    await box.press("Enter")
    bodies = alice.locator("#message-list .message .body")
    await expect(alice.locator(".message[data-id] .body")).to_have_text(["Before the restart"])

    bob = await browsing.open(users["bob"], "/messages/alice/")
    await expect(bob.locator("#chat")).to_have_attribute("data-state", "open")
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Before the restart"])

    await asyncio.to_thread(alices_server.stop)
    await expect(chat).to_have_attribute("data-state", "reconnecting")
    status = alice.locator("#connection-status")
    await expect(status).to_be_visible()
    await expect(status).to_have_text("Connection lost. Reconnecting…")

    bob_box = bob.get_by_role("textbox", name="Message")
    await bob_box.fill("Sent while your server was down")
    await bob_box.press("Enter")
    await expect(bob.locator(".message.own[data-id] .body")).to_have_text(["Sent while your server was down"])

    await asyncio.to_thread(alices_server.start)  # same port: the page's socket.js finds it again
    await expect(chat).to_have_attribute("data-state", "open", timeout=RECONNECT_MS)
    await expect(status).to_be_hidden(timeout=RECONNECT_MS)
    await expect(bodies).to_have_text(["Before the restart", "Sent while your server was down"])
    await asyncio.sleep(0.5)  # a duplicate (live copy and replayed copy) would show up by now
    await expect(bodies).to_have_text(["Before the restart", "Sent while your server was down"])

    # The new socket is a working one: Alice's reply is stored and echoed.
    await box.fill("Back again")
    await box.press("Enter")
    await expect(alice.locator(".message[data-id] .body")).to_have_text(
        ["Before the restart", "Sent while your server was down", "Back again"]
    )
    assert await sync_to_async(Message.objects.count)() == 3
