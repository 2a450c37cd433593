"""An invitation to a private room in a real Chromium: the bell rings, Accept opens the room."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm import services
from tests.browser.conftest import BROWSER_TESTS
from tests.browser.helpers import chat_open, send_message

pytestmark = BROWSER_TESTS


async def test_invite_ring_accept_and_chat(browsing, users, screenshot):
    await sync_to_async(services.room_create)(creator=users["alice"], name="Secret", slug="secret", private=True)
    bob = await browsing.open(users["bob"], "/")
    alice = await browsing.open(users["alice"], "/rooms/secret/")
    await chat_open(alice)
    await alice.get_by_label("Invite a member").fill("bob")
    await alice.get_by_role("button", name="Invite").click()
    await expect(alice.locator(".flash")).to_have_text("bob is invited and becomes a member on accepting.")
    await expect(alice.locator("#invitee-list li")).to_have_text("bob Withdraw")

    await expect(bob.locator("#bell-badge")).to_have_text("1")
    await bob.locator("#bell-button").click()
    await bob.locator("#bell-list a", has_text="alice invited you to “Secret”").click()
    await expect(bob).to_have_url(f"{browsing.server.url}/rooms/secret/")
    await expect(bob.locator("#invitation")).to_contain_text("alice invited you to “Secret”")
    await screenshot(bob, "invitation")
    await bob.get_by_role("button", name="Accept").click()
    await chat_open(bob)
    await expect(alice.locator("#online-list li")).to_have_text(["alice", "bob"])
    await send_message(alice, "Welcome, Bob")
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Welcome, Bob"])
