"""The chat window, inbox and bell as a person uses them every day, at 1280x800 and on a 390x844 phone."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm import services
from tests.browser.conftest import BROWSER_TESTS, DESKTOP, PHONE
from tests.browser.helpers import (
    assert_accessible,
    chat_open,
    comment_through_page,
    in_viewport,
    no_horizontal_scroll,
    send_message,
)

pytestmark = BROWSER_TESTS
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]
# After a message has shown up, how long to wait for a (wrong) second copy.
SETTLE_S = 0.5
SENT = ["Sent into the void", "Typed while offline"]


@sync_to_async
def dm_history(sender, reader, count, *, read_first=0):
    """``count`` messages from ``sender`` to ``reader``; the reader has read the first ``read_first``."""
    conversation = services.direct_conversation_get_or_create(user_a=sender, user_b=reader)
    sent = [
        services.message_send(sender=sender, conversation=conversation, body=f"Message number {n}", client_id=None)
        for n in range(1, count + 1)
    ]
    if read_first:
        services.read_mark(user=reader, conversation=conversation, message_id=sent[read_first - 1].message.pk)
    return conversation


async def list_scroll(page):
    return await page.evaluate(
        "(() => { const l = document.getElementById('message-list');"
        " return {top: l.scrollTop, height: l.scrollHeight, client: l.clientHeight}; })()"
    )


@pytest.mark.parametrize("viewport", SIZES)
async def test_conversation_pane_follows_new_messages_and_keeps_the_composer_in_view(
    browsing, users, screenshot, viewport
):
    await dm_history(users["bob"], users["alice"], 60, read_first=52)
    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=viewport)
    await chat_open(alice)
    # Opens at the first unread message, under a "New" divider, with the composer focused and in view.
    divider = alice.locator("#message-list .new-divider")
    await expect(divider).to_have_text("New")
    await expect(alice.locator("#message-list .new-divider + .message .body")).to_have_text("Message number 53")
    await expect(divider).to_be_in_viewport()
    await expect(alice.locator("#message-input")).to_be_focused()
    await in_viewport(alice, "#message-input")
    await in_viewport(alice, "#send-button")
    await no_horizontal_scroll(alice)
    await expect(alice.locator(".day-separator").first).to_have_text("Today")
    # Consecutive messages of one sender are grouped under one name.
    await expect(alice.locator(".message.grouped").first).to_be_attached()
    await expect(alice.locator("#message-live")).to_have_text("")
    await assert_accessible(alice)

    bob = await browsing.open(users["bob"], "/messages/alice/", viewport=viewport)
    await chat_open(bob)
    # Alice scrolled up: a new message does not move her, a button counts it.
    await alice.evaluate("document.getElementById('message-list').scrollTop = 0")
    await expect(alice.locator("#load-older")).to_be_hidden()  # scrolling to the top loaded the rest
    await send_message(bob, "Are you there?")
    new_button = alice.locator("#new-messages")
    await expect(new_button).to_have_text("1 new message ↓")
    await expect(alice.locator("#message-live")).to_have_text("bob: Are you there?")
    await expect(alice.locator(".message .body", has_text="Are you there?")).not_to_be_in_viewport()
    await new_button.click()
    await expect(alice.locator(".message .body", has_text="Are you there?")).to_be_in_viewport()
    await expect(new_button).to_be_hidden()

    # At the bottom, the next message scrolls into view by itself.
    await send_message(bob, "Check https://example.org/page?x=1, and ping @alice or @nobody\nsecond line")
    last = alice.locator(".message").last
    await expect(last.locator(".body")).to_contain_text("second line")
    await expect(last).to_be_in_viewport()
    link = last.locator(".body a")
    await expect(link).to_have_attribute("href", "https://example.org/page?x=1")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(last.locator(".mention")).to_have_text(["@alice"])
    await expect(last.locator(".mention-me")).to_have_text("@alice")
    await expect(last.locator(".body")).to_contain_text("@nobody")
    await in_viewport(alice, "#message-input")
    await no_horizontal_scroll(alice)

    long_word = "x" * 400
    await send_message(alice, long_word)
    await expect(bob.locator(".message .body", has_text=long_word)).to_be_in_viewport()
    await no_horizontal_scroll(bob)
    await assert_accessible(bob)
    await screenshot(alice, f"dm-{'phone' if viewport is PHONE else 'desktop'}")

    # An on-screen keyboard takes the lower part of the screen: the composer moves up with it.
    await alice.set_viewport_size({"width": viewport["width"], "height": viewport["height"] // 2})
    await send_message(bob, "Still with me?")
    await expect(alice.locator(".message").last).to_be_in_viewport()
    await in_viewport(alice, "#message-input")
    await no_horizontal_scroll(alice)


async def test_older_history_keeps_the_readers_place(browsing, users):
    await dm_history(users["bob"], users["alice"], 120, read_first=120)
    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=DESKTOP)
    await chat_open(alice)
    await expect(alice.locator(".message[data-id]")).to_have_count(50)
    await expect(alice.locator("#load-older")).to_be_visible()
    first = alice.locator(".message[data-id]").first
    await expect(first.locator(".body")).to_have_text("Message number 71")
    # The keyboard path: the button loads the page before, and what the reader sees stays where it was.
    seen = alice.locator(".message[data-id]", has_text="Message number 100")
    before = await seen.bounding_box()
    await alice.locator("#load-older").click()
    await expect(alice.locator(".message[data-id]")).to_have_count(100)
    assert abs((await seen.bounding_box())["y"] - before["y"]) < 1
    # Scrolling to the top loads the rest the same way: the message at the top stays put.
    before = await alice.evaluate(
        "(() => { document.getElementById('message-list').scrollTop = 0;"
        " return document.querySelectorAll('.message[data-id]')[1].getBoundingClientRect().y; })()"
    )
    await expect(alice.locator(".message[data-id]")).to_have_count(120)
    after = await alice.locator(".message[data-id]", has_text="Message number 22").bounding_box()
    assert abs(after["y"] - before) < 1, (before, after)
    await expect(alice.locator("#load-older")).to_be_hidden()
    await assert_accessible(alice)


@pytest.mark.parametrize("viewport", SIZES)
async def test_outbox_survives_a_reload_and_is_sent_exactly_once(browsing, users, viewport):
    bob = await browsing.open(users["bob"], "/messages/alice/", viewport=viewport)
    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=viewport)
    await chat_open(alice)
    await chat_open(bob)

    # Alice's acknowledgements get lost: her frames reach the server, its message frames never reach her.
    network = {"mode": "deaf"}

    async def route(socket):
        if network["mode"] == "down":
            await socket.close(code=1006)
            return
        server = socket.connect_to_server()
        if network["mode"] == "deaf":

            def to_page(message):
                if json.loads(message)["type"] != "message":
                    socket.send(message)

            socket.on_message(lambda message: server.send(message))
            server.on_message(to_page)

    await alice.route_web_socket("**/ws/dm/**", route)
    await alice.reload()
    await chat_open(alice)
    await send_message(alice, "Sent into the void")
    await expect(alice.locator(".message.pending time")).to_have_text("sending…")
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Sent into the void"])

    # Then fully offline: a reload shows the stored one, and the next one waits in localStorage.
    network["mode"] = "down"
    await alice.reload()
    await expect(alice.locator(".message[data-id] .body")).to_have_text(["Sent into the void"])
    await expect(alice.locator(".message.pending")).to_have_count(0)
    await send_message(alice, "Typed while offline")
    await expect(alice.locator(".message.pending time")).to_have_text("sending…")
    await alice.reload()
    await expect(alice.locator(".message.pending .body")).to_have_text("Typed while offline")
    client_id = await alice.locator(".message.pending").get_attribute("data-client-id")
    await in_viewport(alice, "#message-input")
    await no_horizontal_scroll(alice)

    # Back online after a reload: it goes out once, with its original client_id.
    network["mode"] = "up"
    await alice.reload()
    await chat_open(alice)
    await expect(alice.locator(".message.pending")).to_have_count(0)
    for page in (alice, bob):
        await expect(page.locator(".message[data-id] .body")).to_have_text(SENT)
    await expect(bob.locator(".message[data-id]").last).to_have_attribute("data-client-id", client_id)
    await asyncio.sleep(SETTLE_S)
    await bob.reload()
    await chat_open(bob)
    await expect(bob.locator(".message[data-id] .body")).to_have_text(SENT)
    assert await alice.evaluate("Object.keys(localStorage).filter(k => k.startsWith('outbox:')).length") == 0


async def test_a_refused_message_offers_retry_and_discard(browsing, users):
    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=PHONE)
    await chat_open(alice)
    key = await alice.evaluate("'outbox:' + document.getElementById('chat').dataset.userId + ':/ws/dm/bob/'")
    # A message the server refuses for good (too long), as if typed before a reload.
    await alice.evaluate(
        f"localStorage.setItem({json.dumps(key)}, JSON.stringify([{{client_id: 'c-1', body: 'y'.repeat(4001)}}]))"
    )
    await alice.reload()
    failed = alice.locator(".message.failed")
    await expect(failed.locator("time")).to_have_text("failed")
    await expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    await assert_accessible(alice)
    # Retry sends it again (refused again: still too long); Discard drops it for good.
    sent = []
    alice.on("websocket", lambda socket: socket.on("framesent", lambda frame: sent.append(frame)))
    await alice.reload()
    await chat_open(alice)
    await expect(failed.locator("time")).to_have_text("failed")
    assert not [frame for frame in sent if "c-1" in frame]  # a refused message is not resent by itself
    await failed.get_by_role("button", name="Retry").click()
    await expect(failed.locator("time")).to_have_text("failed")
    # Refused again, so it went out: exactly once.
    assert len([frame for frame in sent if "c-1" in frame]) == 1
    await failed.get_by_role("button", name="Discard").click()
    await expect(alice.locator(".message")).to_have_count(0)
    assert await alice.evaluate(f"localStorage.getItem({json.dumps(key)})") is None


@sync_to_async
def many_rooms(owner):
    """General (with a message from its creator), Secret (private) and 34 more public rooms."""
    general = services.room_create(creator=owner, name="General", slug="general", private=False)
    services.message_send(sender=owner, conversation=general, body="Welcome, @alice!", client_id=None)
    services.room_create(creator=owner, name="Secret", slug="secret", private=True)
    for n in range(1, 35):
        services.room_create(creator=owner, name=f"Room {n}", slug=f"room-{n}", private=False)


@pytest.mark.parametrize("viewport", SIZES)
async def test_rooms_list_read_only_room_join_and_leave(browsing, users, screenshot, viewport):
    await many_rooms(users["bob"])
    alice = await browsing.open(users["alice"], "/rooms/", viewport=viewport)
    sockets = []
    alice.on("websocket", lambda socket: sockets.append(socket.url))
    await expect(alice.locator("#room-list .room a").first).to_have_text("General")
    await expect(alice.locator("#room-list .room a").nth(2)).to_have_text("Room 2")  # natural order: 1, 2, …, 10
    await expect(alice.locator("#room-pager")).to_contain_text("Page 1 of 2")
    await no_horizontal_scroll(alice)
    await assert_accessible(alice)

    await alice.get_by_label("Name").fill("Book Club 2")
    await expect(alice.get_by_label("Address")).to_have_value("book-club-2")
    await alice.get_by_label("Address").fill("books")
    await alice.get_by_label("Name").fill("Book Club")
    await expect(alice.get_by_label("Address")).to_have_value("books")

    await alice.get_by_role("searchbox", name="Find a room").fill("gen")
    await alice.get_by_role("searchbox", name="Find a room").press("Enter")
    await expect(alice).to_have_url(f"{browsing.server.url}/rooms/?q=gen")
    await expect(alice.locator("#room-list .room a")).to_have_text(["General"])
    await alice.locator("#room-list .room a").click()

    # Not a member: the history is readable, the socket stays closed, and Join is offered.
    await expect(alice.locator(".message .body")).to_have_text(["Welcome, @alice!"])
    await expect(alice.locator(".message .mention-me")).to_have_text("@alice")
    await expect(alice.get_by_role("button", name="Join")).to_be_visible()
    await expect(alice.locator("#message-input")).to_have_count(0)
    await expect(alice.locator("#leave-room")).to_have_count(0)
    assert not [url for url in sockets if "/ws/rooms/" in url]
    await no_horizontal_scroll(alice)
    await assert_accessible(alice)

    await alice.get_by_role("button", name="Join").click()
    await chat_open(alice)
    await expect(alice.locator("#leave-room")).to_be_visible()
    await in_viewport(alice, "#leave-room")
    await in_viewport(alice, "#message-input")
    bob = await browsing.open(users["bob"], "/rooms/general/", viewport=viewport)
    await chat_open(bob)
    await send_message(bob, "Glad you joined, @alice")
    await expect(alice.locator(".message").last).to_be_in_viewport()
    await expect(alice.locator("#message-live")).to_have_text("bob: Glad you joined, @alice")
    await send_message(alice, "Thanks!")
    await expect(bob.locator(".message").last.locator(".body")).to_have_text("Thanks!")
    await no_horizontal_scroll(alice)
    await assert_accessible(alice)
    await screenshot(alice, f"room-{'phone' if viewport is PHONE else 'desktop'}")

    # A private room you are not in: a styled 403 in the site layout, with a way back.
    await alice.goto("/rooms/secret/")
    await expect(alice.get_by_role("heading", name="You can’t open this page")).to_be_visible()
    await expect(alice.get_by_role("link", name="Back to the feed")).to_be_visible()
    await expect(alice.locator("#bell-button")).to_be_visible()
    await assert_accessible(alice)
    browsing.errors[:] = [error for error in browsing.errors if not error.endswith("/rooms/secret/")]


@pytest.fixture
def post(users):
    """A post by alice."""
    from social.models import Post

    return Post.objects.create(author=users["alice"], title="Hello world", body="My first post.")


@pytest.mark.parametrize("viewport", SIZES)
async def test_bell_header_and_lists_update_live(browsing, users, post, screenshot, viewport):
    alice = await browsing.open(users["alice"], "/notifications/", viewport=viewport)
    inbox = await browsing.new_tab(alice, "/messages/")
    await expect(alice.locator("#connection-status")).to_have_attribute("data-state", "open")
    await expect(inbox.locator("#connection-status")).to_have_attribute("data-state", "open")
    await expect(alice).to_have_title("Notifications · Social")

    bob = await browsing.open(users["bob"], f"/posts/{post.pk}/", viewport=viewport)
    await comment_through_page(bob, post, "Nice post!")
    row = alice.locator("#notification-page-list .notification-row.unread")
    await expect(row).to_have_count(1)
    await expect(row.locator(".notification-text")).to_contain_text("bob")
    await expect(alice.locator("#notifications-unread")).to_have_text("1 unread")
    await expect(alice).to_have_title("(1) Notifications · Social")
    await expect(row.get_by_role("button", name="Mark read")).to_be_visible()

    await bob.goto("/messages/alice/")
    await chat_open(bob)
    await send_message(bob, "Did you see my comment?")
    conversation = inbox.locator("#conversation-list .conversation")
    await expect(conversation.locator(".conversation-title")).to_have_text(["bob"])
    await expect(conversation.locator(".conversation-unread")).to_have_text("1 unread")
    await expect(conversation.locator(".last-message")).to_have_text("bob: Did you see my comment?")
    await expect(inbox.locator("#messages-badge")).to_have_text("1")
    await expect(inbox).to_have_title("(2) Messages · Social")
    await no_horizontal_scroll(inbox)
    await assert_accessible(inbox)

    # The bell by keyboard: arrows, Home/End, and focus leaving closes it.
    await alice.locator("#bell-button").focus()
    await alice.keyboard.press("ArrowDown")
    dropdown = alice.locator("#bell-dropdown")
    await expect(dropdown).to_be_visible()
    await expect(alice.locator("#bell-mark-all")).to_be_focused()
    await expect(alice.locator("#bell-list .notification-item")).to_have_count(1)
    await alice.keyboard.press("ArrowDown")
    await expect(alice.locator("#bell-list .notification-link")).to_be_focused()
    await alice.keyboard.press("End")
    await expect(alice.get_by_role("link", name="See all notifications")).to_be_focused()
    await alice.keyboard.press("Home")
    await expect(alice.locator("#bell-mark-all")).to_be_focused()
    time = alice.locator("#bell-list .notification-time")
    await expect(time).to_have_text("just now")
    assert await time.get_attribute("title")
    await in_viewport(alice, "#bell-dropdown")
    await no_horizontal_scroll(alice)
    await assert_accessible(alice)
    await screenshot(alice, f"bell-{'phone' if viewport is PHONE else 'desktop'}")
    await alice.keyboard.press("End")
    await alice.keyboard.press("Tab")
    await expect(dropdown).to_be_hidden()
    # The user menu (password, Log out) opens inside the screen too.
    await alice.locator(".user-menu summary").click()
    await in_viewport(alice, ".user-menu .menu")
    await expect(alice.get_by_role("button", name="Log out")).to_be_visible()
    await alice.locator(".user-menu summary").click()

    # Reading it from the bell updates the page's list and the title too.
    await alice.locator("#bell-button").click()
    await alice.locator("#bell-list .notification-mark-read").click()
    await expect(row).to_have_count(0)
    await expect(alice.locator("#notifications-unread")).to_have_text("0 unread")
    await expect(alice).to_have_title("(1) Notifications · Social")


async def test_connection_banner_offers_retry_and_goes_away_when_back(browsing, users):
    network = {"up": True}

    async def route(socket):
        if network["up"]:
            socket.connect_to_server()
        else:
            # "Too many connections": the socket waits a minute or more before its next try.
            await socket.close(code=4429)

    alice = await browsing.open(users["alice"], "/", viewport=PHONE)
    await alice.context.route_web_socket("**/ws/**", route)
    await alice.reload()
    status = alice.locator("#connection-status")
    await expect(status).to_have_attribute("data-state", "open")
    network["up"] = False
    await alice.reload()
    await expect(status).to_contain_text("Connection lost")
    retry = alice.get_by_role("button", name="Retry now")
    await expect(retry).to_be_visible()
    await assert_accessible(alice)
    network["up"] = True
    await retry.click()
    await expect(status).to_be_hidden(timeout=3000)
    await expect(retry).to_have_count(0)


@pytest.mark.parametrize("viewport", SIZES)
async def test_every_page_is_accessible_and_fits(browsing, users, post, viewport):
    await many_rooms(users["bob"])
    await dm_history(users["bob"], users["alice"], 3)
    page = await browsing.open(users["alice"], "/", viewport=viewport)
    for path in ("/", f"/posts/{post.pk}/", "/messages/", "/rooms/", "/rooms/?q=room&page=2", "/notifications/",
                 "/accounts/password/change/"):
        await page.goto(path)
        await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
        await no_horizontal_scroll(page)
        await assert_accessible(page)
    anonymous = await browsing.browser.new_context(base_url=browsing.server.url, viewport=viewport)
    browsing.contexts.append(anonymous)
    login = await anonymous.new_page()
    await login.goto("/accounts/login/")
    await no_horizontal_scroll(login)
    await assert_accessible(login)
