"""A server restart under an open DM window: it says so, reconnects by itself, misses nothing."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm.models import Message
from notifications.models import Notification
from social.models import Post
from tests.browser.conftest import BROWSER_TESTS
from tests.browser.helpers import chat_open, comment_through_page, send_message

pytestmark = BROWSER_TESTS
# Reconnecting uses back-off with jitter; after a few failed attempts the next one
# can be up to ~8 s away, so waiting for it gets more than the default 10 s.
RECONNECT_MS = 30_000
# After the missed message has shown up, how long to wait for a (wrong) second copy.
SETTLE_S = 0.5


@pytest.fixture
def post(users):
    """A post by alice, who has one (unread) notification already."""
    Notification.objects.create(recipient=users["alice"], text="Welcome to Social", url="/")
    return Post.objects.create(author=users["alice"], title="Hello world", body="My first post.")


async def test_dm_window_and_bell_survive_server_restart(browsing, users, post, start_server):
    # Alice's server is one of the test's own, so it can be stopped; Bob stays on the
    # shared server (another process on the same database) and acts during the outage.
    # With the in-memory layer nothing crosses processes, and Alice's server is down
    # anyway: she gets what she missed only through the `after` resume.
    alices_server = await asyncio.to_thread(start_server, "dm-restart")
    alice = await browsing.open(users["alice"], "/messages/bob/", server=alices_server)
    await chat_open(alice)
    await send_message(alice, "Before the restart")
    bodies = alice.locator("#message-list .message .body")
    await expect(alice.locator(".message[data-id] .body")).to_have_text(["Before the restart"])
    await expect(alice.locator("#bell-badge")).to_have_text("1")

    bob = await browsing.open(users["bob"], "/messages/alice/")
    bob_post = await browsing.new_tab(bob, "/")
    await chat_open(bob)
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Before the restart"])

    await asyncio.to_thread(alices_server.stop)
    await expect(alice.locator("#chat")).to_have_attribute("data-state", "reconnecting")
    status = alice.locator("#connection-status")
    await expect(status).to_be_visible()
    await expect(status).to_contain_text("Connection lost. Reconnecting…")
    await expect(status.get_by_role("button", name="Retry now")).to_be_visible()

    await send_message(bob, "Sent while your server was down")
    await expect(bob.locator(".message.own[data-id] .body")).to_have_text(["Sent while your server was down"])
    await comment_through_page(bob_post, post, "Commented while your server was down")

    await asyncio.to_thread(alices_server.start)  # same port: the page's socket.js finds it again
    await chat_open(alice, timeout=RECONNECT_MS)
    await expect(status).to_be_hidden(timeout=RECONNECT_MS)
    await expect(bodies).to_have_text(["Before the restart", "Sent while your server was down"])
    await expect(alice.locator("#bell-badge")).to_have_text("2")
    await asyncio.sleep(SETTLE_S)
    await expect(bodies).to_have_text(["Before the restart", "Sent while your server was down"])
    await alice.locator("#bell-button").click()
    await expect(alice.locator("#bell-list .notification-link")).to_have_text(
        ["bob commented on your post “Hello world”", "Welcome to Social"]
    )

    # The new socket is a working one: Alice's reply is stored and echoed.
    await send_message(alice, "Back again")
    await expect(alice.locator(".message[data-id] .body")).to_have_text(
        ["Before the restart", "Sent while your server was down", "Back again"]
    )
    assert await sync_to_async(Message.objects.count)() == 3
