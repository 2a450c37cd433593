"""Rooms in the header and on /messages/ follow new room messages live, without a reload."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm import services
from tests.browser.conftest import BROWSER_TESTS, DESKTOP, PHONE
from tests.browser.helpers import assert_accessible, chat_open, no_horizontal_scroll, send_message

pytestmark = BROWSER_TESTS


@sync_to_async
def busy_room(users):
    room = services.room_create(creator=users["alice"], name="Lobby", slug="lobby", private=False)
    services.room_join(user=users["bob"], conversation=room)
    pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["carol"])
    services.message_send(sender=users["carol"], conversation=pair, body="older DM", client_id=None)
    return room


@pytest.mark.parametrize("viewport", [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")])
async def test_a_room_message_moves_the_inbox_and_lights_the_rooms_indicator_live(browsing, users, viewport):
    await busy_room(users)
    alice = await browsing.open(users["alice"], "/messages/", viewport=viewport)
    await expect(alice.locator("#connection-status")).to_have_attribute("data-state", "open")
    rows = alice.locator("#conversation-list .conversation")
    await expect(rows.locator(".conversation-title")).to_have_text(["carol", "# Lobby"])
    await expect(alice.locator("#rooms-badge")).to_be_hidden()

    bob = await browsing.open(users["bob"], "/rooms/lobby/", viewport=viewport)
    await chat_open(bob)
    await send_message(bob, "Anyone around?")
    await expect(rows.locator(".conversation-title")).to_have_text(["# Lobby", "carol"])
    await expect(rows.first.locator(".last-message")).to_have_text("bob: Anyone around?")
    await expect(rows.first.locator(".conversation-unread")).to_have_text("1 unread")
    await expect(alice.locator("#rooms-badge")).to_be_visible()
    await no_horizontal_scroll(alice)
    await assert_accessible(alice)

    # alice reads the room in another tab: the first tab's indicator and row clear, live.
    reading = await browsing.new_tab(alice, "/rooms/lobby/")
    await chat_open(reading)
    await expect(reading.locator("#message-list .message .body").last).to_have_text("Anyone around?")
    await expect(alice.locator("#rooms-badge")).to_be_hidden()
    await expect(rows.first.locator(".conversation-unread")).to_have_count(0)
    # Her own message in the room moves the row but is not unread.
    await send_message(reading, "I am")
    await expect(rows.first.locator(".last-message")).to_have_text("alice: I am")
    await expect(rows.first.locator(".conversation-unread")).to_have_count(0)
