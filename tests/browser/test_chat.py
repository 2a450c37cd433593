"""Direct messages and rooms in a real Chromium, each user in a browser context of their own."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.browser.conftest import BROWSER_TESTS
from tests.browser.helpers import chat_open, send_message

pytestmark = BROWSER_TESTS
# After a message has shown up, how long to wait for a (wrong) second copy.
SETTLE_S = 0.5


async def test_dm_typing_message_inbox_badge_and_seen(browsing, users, screenshot):
    bob_feed = await browsing.open(users["bob"], "/")
    alice = await browsing.open(users["alice"], "/messages/")
    await alice.get_by_label("Send a message to (username)").fill("bob")
    await alice.get_by_role("button", name="Open conversation").click()
    await expect(alice).to_have_url(f"{browsing.server.url}/messages/bob/")
    bob = await browsing.new_tab(bob_feed, "/messages/alice/")
    await chat_open(alice)
    await chat_open(bob)

    box = alice.get_by_role("textbox", name="Message")
    await box.press_sequentially("Hi Bob!")
    await expect(bob.locator("#typing-indicator")).to_have_text("alice is typing…")
    await box.press("Enter")
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Hi Bob!"])
    await expect(bob.locator("#typing-indicator")).to_have_text("")
    # Bob's window is visible, so he has read it: Alice sees "Seen".
    await expect(alice.locator(".message.own[data-id] .read-marker")).to_have_text("Seen")

    # Bob leaves the conversation for another page: a new message raises his Messages badge there.
    await bob.goto("/rooms/")
    await expect(bob.locator("#connection-status")).to_have_attribute("data-state", "open")
    await expect(bob.locator("#messages-badge")).to_be_hidden()
    await send_message(alice, "Lunch today?")
    await expect(alice.locator(".message.own[data-id] .body")).to_have_text(["Hi Bob!", "Lunch today?"])
    for page in (bob, bob_feed):
        await expect(page.locator("#messages-badge")).to_have_text("1")
    await expect(alice.locator(".read-marker")).to_have_count(1)
    await expect(alice.locator(".message.own[data-id]").first.locator(".read-marker")).to_have_text("Seen")

    await bob.goto("/messages/alice/")
    await chat_open(bob)
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Hi Bob!", "Lunch today?"])
    await expect(alice.locator(".message.own[data-id]").last.locator(".read-marker")).to_have_text("Seen")
    await expect(alice.locator(".read-marker")).to_have_count(1)
    await expect(bob_feed.locator("#messages-badge")).to_be_hidden()

    await send_message(bob, "Sounds good, see you at noon.")
    bodies = alice.locator(".message[data-id] .body")
    await expect(bodies).to_have_text(["Hi Bob!", "Lunch today?", "Sounds good, see you at noon."])
    await expect(alice.locator(".message[data-id]:not(.own) .sender")).to_have_text(["bob"])
    await asyncio.sleep(SETTLE_S)
    await expect(bodies).to_have_count(3)
    await expect(bob.locator(".message[data-id] .body")).to_have_count(3)
    await screenshot(alice, "dm")


async def test_room_presence_and_one_copy_per_window(browsing, users, screenshot):
    alice = await browsing.open(users["alice"], "/rooms/")
    await alice.get_by_label("Name").fill("Book club")
    await alice.get_by_label("Address").fill("book-club")
    await alice.get_by_role("button", name="Create room").click()
    await expect(alice).to_have_url(f"{browsing.server.url}/rooms/book-club/")
    bob = await browsing.open(users["bob"], "/rooms/book-club/")
    carol = await browsing.open(users["carol"], "/rooms/book-club/")
    for page in (bob, carol):
        # Reading a public room does not join it: the Join button does.
        await page.get_by_role("button", name="Join").click()
    windows = {"alice": alice, "bob": bob, "carol": carol}
    for page in windows.values():
        await chat_open(page)
    for page in windows.values():
        await expect(page.locator("#online-list li")).to_have_text(["alice", "bob", "carol"], ignore_case=False)

    said = [
        ("bob", "Has everyone finished chapter three?"),
        ("carol", "Almost, two pages left."),
        ("alice", "Let's meet on Friday then."),
    ]
    for name, text in said:
        await send_message(windows[name], text)
        # Stored (echoed) before the next one is sent, so the order is known.
        await expect(windows[name].locator(".message.own[data-id] .body")).to_have_text([text])
    expected = [text for _, text in said]
    for page in windows.values():
        await expect(page.locator(".message[data-id] .body")).to_have_text(expected)
    await asyncio.sleep(SETTLE_S)
    for name, page in windows.items():
        await expect(page.locator("#message-list .message")).to_have_count(3)
        await expect(page.locator(".message.own .sender")).to_have_text([name])
    await screenshot(alice, "room")

    await carol.close()
    for page in (alice, bob):
        await expect(page.locator("#online-list li")).to_have_text(["alice", "bob"])


async def test_chat_by_keyboard(browsing, users):
    page = await browsing.open(users["alice"], "/messages/bob/")
    await chat_open(page)
    box = page.locator("#message-input")
    # The textarea has an accessible name from its <label>, and a description.
    await expect(page.get_by_role("textbox", name="Message")).to_have_id("message-input")
    await expect(box).to_have_accessible_description(
        "Enter sends, Shift+Enter starts a new line, Up edits your last message."
    )

    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "message-input":
            break
    else:
        pytest.fail("Tab never reached the message box")
    assert await box.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"

    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("second line")
    await page.keyboard.press("Enter")
    await expect(page.locator(".message.own[data-id] .body")).to_have_text("first line\nsecond line")
    await expect(box).to_have_value("")
    await expect(box).to_be_focused()

    await page.keyboard.press("Tab")
    await expect(page.locator("#send-button")).to_be_focused()
    await box.fill("sent with the button, by keyboard")
    await page.locator("#send-button").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".message.own[data-id] .body")).to_have_count(2)
