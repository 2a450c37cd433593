"""Messages that change (protocol 1.1) as people see them: edits, deletes, reactions and replies,
live for everyone, after a reconnect, and mention links that go to the message."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm import services
from tests.browser.conftest import BROWSER_TESTS, DESKTOP, PHONE
from tests.browser.helpers import assert_accessible, chat_open, in_viewport, no_horizontal_scroll, send_message

pytestmark = BROWSER_TESTS
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]
# After a change has shown up, how long to wait for a (wrong) second copy.
SETTLE_S = 0.5
TARGETED = re.compile(r"\btargeted\b")


@sync_to_async
def room_with(owner, *members, slug="general"):
    """A public room created by ``owner`` with ``members`` joined."""
    room = services.room_create(creator=owner, name=slug.title(), slug=slug, private=False)
    for member in members:
        services.room_join(user=member, conversation=room)
    return room


@sync_to_async
def say(sender, conversation, body, reply_to=None):
    """A message stored (and published) as if sent from elsewhere; returns its id."""
    return services.message_send(
        sender=sender, conversation=conversation, body=body, client_id=None, reply_to=reply_to
    ).message.pk


def bubble(page, body):
    """The stored message whose text starts with ``body``."""
    return page.locator(".message[data-id]", has=page.locator(".body", has_text=body))


async def toolbar(message):
    """Point at the message (a tap on a phone) so its actions show, and return its toolbar."""
    await message.click(position={"x": 4, "y": 4})
    bar = message.locator(".message-actions")
    await expect(bar).to_have_css("opacity", "1")
    return bar


async def test_edits_deletes_and_reactions_show_live_for_both_in_a_room(browsing, users):
    await room_with(users["carol"], users["alice"], users["bob"])
    alice = await browsing.open(users["alice"], "/rooms/general/", viewport=DESKTOP)
    bob = await browsing.open(users["bob"], "/rooms/general/", viewport=DESKTOP)
    await chat_open(alice)
    await chat_open(bob)
    await send_message(alice, "Helo everyone")
    await expect(bubble(bob, "Helo everyone")).to_have_count(1)

    # Edit with the button: Enter saves; both see the new text marked "(edited)" with its time.
    mine = bubble(alice, "Helo everyone")
    await (await toolbar(mine)).get_by_role("button", name="Edit").click()
    editor = alice.get_by_role("textbox", name="Edit message")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("Helo everyone")
    await editor.fill("Hello everyone")
    await editor.press("Enter")
    for page in (alice, bob):
        body = page.locator(".message[data-id] .body").first
        await expect(body).to_have_text("Hello everyone (edited)")
        assert (await body.locator(".edited").get_attribute("title")).startswith("Edited ")
    await expect(alice.locator("#message-input")).to_be_focused()

    # Up on the empty composer edits the last own message; Escape cancels, Enter saves.
    await send_message(alice, "Second thougt")
    await expect(bubble(bob, "Second thougt")).to_have_count(1)
    box = alice.get_by_role("textbox", name="Message")
    await box.press("ArrowUp")
    await expect(editor).to_have_value("Second thougt")
    await editor.fill("never mind")
    await editor.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(bubble(alice, "Second thougt").locator(".body")).to_have_text("Second thougt")
    await expect(box).to_be_focused()
    await box.press("ArrowUp")
    await editor.fill("Second thought")
    await editor.press("Enter")
    await expect(bubble(bob, "Second thought").locator(".body")).to_have_text("Second thought (edited)")

    # Reactions: bob by mouse from the toolbar, alice by keyboard on the count; own highlighted.
    first_for_bob = bubble(bob, "Hello everyone")
    await (await toolbar(first_for_bob)).get_by_role("button", name="React with 👍").click()
    thumbs_alice = bubble(alice, "Hello everyone").locator('.reaction[data-emoji="👍"]')
    await expect(thumbs_alice.locator(".count")).to_have_text("1")
    await expect(thumbs_alice).to_have_attribute("aria-pressed", "false")
    await thumbs_alice.focus()
    await alice.keyboard.press("Space")
    thumbs_bob = first_for_bob.locator('.reaction[data-emoji="👍"]')
    for chip in (thumbs_alice, thumbs_bob):
        await expect(chip.locator(".count")).to_have_text("2")
        await expect(chip).to_have_attribute("aria-pressed", "true")
        await expect(chip).to_have_class(re.compile(r"\bmine\b"))
    await expect(thumbs_alice).to_be_focused()
    # Bob takes his back with Enter on his own chip.
    await thumbs_bob.focus()
    await bob.keyboard.press("Enter")
    await expect(thumbs_bob.locator(".count")).to_have_text("1")
    await expect(thumbs_bob).to_have_attribute("aria-pressed", "false")
    await expect(thumbs_alice).to_have_attribute("aria-pressed", "true")
    # The toolbar is one tab stop: arrows move inside it (the fourth quick reaction is 🎉).
    quick = bubble(alice, "Hello everyone").locator(".message-actions .react").first
    await quick.focus()
    for _ in range(3):
        await alice.keyboard.press("ArrowRight")
    await expect(alice.get_by_role("button", name="React with 🎉").first).to_be_focused()
    await alice.keyboard.press("Enter")
    await expect(first_for_bob.locator(".reaction .emoji")).to_have_text(["👍", "🎉"])
    await expect(first_for_bob.locator(".reaction .count")).to_have_text(["1", "1"])

    # Delete asks in an in-page dialog: focus goes into it; Escape keeps the message, focus comes back.
    second = bubble(alice, "Second thought")
    delete = (await toolbar(second)).get_by_role("button", name="Delete")
    await delete.click()
    dialog = alice.get_by_role("dialog", name="Delete this message?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Second thought")
    await expect(alice.locator("#delete-cancel")).to_be_focused()
    await assert_accessible(alice)
    await alice.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(delete).to_be_focused()
    await expect(bubble(bob, "Second thought")).to_have_count(1)
    await delete.click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(dialog).to_be_hidden()
    for page in (alice, bob):
        tombstone = page.locator(".message.deleted")
        await expect(tombstone.locator(".tombstone")).to_have_text("message deleted")
        await expect(tombstone.locator(".message-actions, .reactions")).to_have_count(0)
        # It keeps its place: second of the two.
        await expect(page.locator(".message[data-id]").nth(1)).to_have_class(re.compile(r"\bdeleted\b"))
    await expect(alice.locator(".message.deleted")).to_be_focused()
    await asyncio.sleep(SETTLE_S)
    for page in (alice, bob):
        await expect(page.locator(".message[data-id]")).to_have_count(2)
    await assert_accessible(bob)


@pytest.mark.parametrize("viewport", SIZES)
async def test_a_reply_quotes_the_original_and_links_to_it(browsing, users, viewport):
    conversation = await sync_to_async(services.direct_conversation_get_or_create)(
        user_a=users["alice"], user_b=users["bob"]
    )
    original = await say(users["bob"], conversation, "Lunch at noon on Friday?")
    for n in range(1, 31):
        await say(users["bob"], conversation, f"Filler message {n}")
    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=viewport)
    bob = await browsing.open(users["bob"], "/messages/alice/", viewport=viewport)
    await chat_open(alice)
    await chat_open(bob)

    # The composer says what it answers; Cancel (or Escape) drops it.
    await (await toolbar(bubble(alice, "Filler message 30"))).get_by_role("button", name="Reply").click()
    preview = alice.locator("#reply-preview-text")
    await expect(preview).to_have_text("Replying to bob: Filler message 30")
    await expect(alice.locator("#message-input")).to_be_focused()
    await alice.get_by_role("button", name="Cancel reply").click()
    await expect(preview).to_be_hidden()

    target = bubble(alice, "Lunch at noon on Friday?")
    await target.scroll_into_view_if_needed()
    await (await toolbar(target)).get_by_role("button", name="Reply").click()
    await expect(preview).to_contain_text("Replying to bob: Lunch at noon on Friday?")
    await send_message(alice, "Yes, see you there")
    await expect(preview).to_be_hidden()
    for page in (alice, bob):
        quote = bubble(page, "Yes, see you there").locator(".reply-quote")
        await expect(quote).to_have_text("bobLunch at noon on Friday?")
        await expect(quote).to_have_attribute("href", f"#message-{original}")
    await no_horizontal_scroll(alice)
    await assert_accessible(alice)

    # The quote goes to the original, far up the list, and highlights it.
    await bob.locator(".reply-quote").click()
    highlighted = bob.locator(f"#message-{original}")
    await expect(highlighted).to_have_class(TARGETED)
    await expect(highlighted).to_be_in_viewport()
    await expect(highlighted).to_be_focused()

    # The original deleted: the quote says so, for both.
    await bob.locator(f"#message-{original} .delete").click()
    await bob.get_by_role("dialog").get_by_role("button", name="Delete").click()
    for page in (alice, bob):
        quote = bubble(page, "Yes, see you there").locator(".reply-quote")
        await expect(quote.locator(".reply-excerpt")).to_have_text("message deleted")
        await expect(page.locator(f"#message-{original} .tombstone")).to_have_text("message deleted")


@sync_to_async
def mention_url(user):
    from notifications.models import Notification

    return Notification.objects.get(recipient=user, kind=Notification.Kind.MENTION).url


async def test_a_mentions_url_pages_back_to_the_message_and_highlights_it(browsing, users):
    room = await room_with(users["bob"], users["alice"])
    early = await say(users["bob"], room, "Welcome!")
    mention = await say(users["bob"], room, "@alice can you look at the schedule?")
    for n in range(1, 121):
        await say(users["bob"], room, f"Room chatter {n}")
    url = await mention_url(users["alice"])
    assert url == f"/rooms/general/#message-{mention}"

    alice = await browsing.open(users["alice"], url, viewport=PHONE)
    target = alice.locator(f"#message-{mention}")
    # Not in the newest page of 50: older pages load until it is there.
    await expect(target).to_have_class(TARGETED)
    await expect(target).to_be_in_viewport()
    await expect(target.locator(".mention-me")).to_have_text("@alice")
    await chat_open(alice)
    await expect(alice.locator(f"#message-{mention}")).to_have_count(1)
    # Already on the page, another message link (a bell click) jumps without a reload.
    await alice.evaluate(f"window.location.hash = '#message-{early}'")
    await expect(alice.locator(f"#message-{early}")).to_have_class(TARGETED)
    await expect(alice.locator(f"#message-{early}")).to_be_in_viewport()
    await expect(alice.locator(".message.targeted")).to_have_count(1)
    await expect(alice.locator("#chat-error")).to_be_hidden()
    await assert_accessible(alice)

    # By keyboard: the targeted message has the focus, Down moves to the next one, Tab reaches
    # only that message's controls, and past them the composer.
    await expect(alice.locator(f"#message-{early}")).to_be_focused()
    await alice.keyboard.press("ArrowDown")
    await expect(target).to_be_focused()
    await alice.keyboard.press("Tab")
    await expect(target.get_by_role("button", name="React with 👍")).to_be_focused()
    await alice.keyboard.press("Enter")
    await expect(target.locator(".reaction.mine .count")).to_have_text("1")
    await alice.keyboard.press("Shift+Tab")
    await expect(target.locator(".reaction")).to_be_focused()
    await alice.keyboard.press("Tab")
    await alice.keyboard.press("Tab")
    await expect(alice.locator("#message-input")).to_be_focused()


async def test_a_tab_offline_catches_up_with_edits_deletes_and_reactions_on_reconnect(browsing, users):
    room = await room_with(users["carol"], users["alice"], users["bob"])
    kept = await say(users["alice"], room, "Meeting at 10")
    dropped = await say(users["alice"], room, "Bring snacks")
    liked = await say(users["alice"], room, "Slides are up")
    alice = await browsing.open(users["alice"], "/rooms/general/", viewport=DESKTOP)
    network = {"up": True}
    open_routes = []
    urls = []

    async def route(socket):
        if not network["up"]:
            await socket.close(code=1006)
            return
        urls.append(socket.url)
        open_routes.append(socket)
        socket.connect_to_server()

    bob = await browsing.open(users["bob"], "/rooms/general/", viewport=DESKTOP, route_sockets=route)
    await chat_open(alice)
    await chat_open(bob)
    await expect(bob.locator(".message[data-id]")).to_have_count(3)

    # Bob's tab loses its connection; he still replies (kept in his outbox, with what it answers).
    network["up"] = False
    for socket in open_routes:
        await socket.close(code=1006)
    await expect(bob.locator("#chat")).to_have_attribute("data-state", "reconnecting")
    await (await toolbar(bob.locator(f"#message-{liked}"))).get_by_role("button", name="Reply").click()
    await send_message(bob, "Great, thanks")
    await expect(bob.locator(".message.pending .reply-quote")).to_have_text("aliceSlides are up")

    # Meanwhile alice edits, deletes, reacts and writes.
    await (await toolbar(alice.locator(f"#message-{kept}"))).get_by_role("button", name="Edit").click()
    editor = alice.get_by_role("textbox", name="Edit message")
    await editor.fill("Meeting at 11")
    await editor.press("Enter")
    await expect(alice.locator(f"#message-{kept} .body")).to_have_text("Meeting at 11 (edited)")
    await (await toolbar(alice.locator(f"#message-{dropped}"))).get_by_role("button", name="Delete").click()
    await alice.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await expect(alice.locator(f"#message-{dropped} .tombstone")).to_be_visible()
    await (await toolbar(alice.locator(f"#message-{liked}"))).get_by_role("button", name="React with ❤️").click()
    await expect(alice.locator(f"#message-{liked} .reaction .count")).to_have_text("1")
    await send_message(alice, "Room moved to B")
    await expect(bubble(alice, "Room moved to B")).to_have_count(1)
    # Nothing of it reached bob.
    await expect(bob.locator(f"#message-{kept} .body")).to_have_text("Meeting at 10")

    # Back online, without a reload: his socket resumes by version and he sees the final state, once.
    network["up"] = True
    await bob.get_by_role("button", name="Retry now").click()
    await chat_open(bob)
    # The bell's socket reconnects beside the room's, in either order.
    room_urls = [url for url in urls if "/ws/rooms/" in url]
    assert "?since=" in room_urls[-1], room_urls
    await expect(bob.locator(f"#message-{kept} .body")).to_have_text("Meeting at 11 (edited)")
    await expect(bob.locator(f"#message-{dropped} .tombstone")).to_have_text("message deleted")
    await expect(bob.locator(f"#message-{liked} .reaction .emoji")).to_have_text(["❤️"])
    await expect(bob.locator(f"#message-{liked} .reaction")).to_have_attribute("aria-pressed", "false")
    reply = bubble(alice, "Great, thanks")
    await expect(reply.locator(".reply-quote")).to_have_attribute("href", f"#message-{liked}")
    expected = ["Meeting at 11 (edited)", "message deleted", "Slides are up", "Room moved to B", "Great, thanks"]
    await asyncio.sleep(SETTLE_S)
    for page in (alice, bob):
        await expect(page.locator(".message[data-id] .body")).to_have_text(expected)
    await expect(bob.locator(".message.pending")).to_have_count(0)


@sync_to_async
def change(user, room, message_id, kind, **fields):
    """An edit, delete or react by ``user``, as the socket would apply it."""
    from dm import changes
    from social.realtime import protocol

    parsed = protocol.Change(kind=kind, message_id=message_id, **fields)
    changes.message_change(user=user, conversation=room, change=parsed)


@pytest.mark.parametrize("viewport", SIZES)
async def test_a_room_with_edited_deleted_reacted_and_reply_messages(browsing, users, screenshot, viewport):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    room = await room_with(bob, alice, carol, slug="lunch")
    question = await say(bob, room, "Who is up for lunch on Friday?")
    await say(alice, room, "Count me in! The usual place?")
    await change(alice, room, question, "react", emoji="👍")
    await change(carol, room, question, "react", emoji="👍")
    await change(carol, room, question, "react", emoji="🎉")
    sorry = await say(carol, room, "I can't make it, sorry")
    await change(carol, room, sorry, "delete")
    place = await say(bob, room, "Usual place at 12:00")
    await change(bob, room, place, "edit", body="Usual place at 12:30")
    await change(alice, room, place, "react", emoji="❤️")
    original = await sync_to_async(lambda: room.messages.get(pk=question))()
    await say(carol, room, "Save me a seat next time, @alice", reply_to=original)

    page = await browsing.open(alice, "/rooms/lunch/", viewport=viewport)
    await chat_open(page)
    await expect(page.locator(".message[data-id]")).to_have_count(5)
    await expect(page.locator(f"#message-{sorry} .tombstone")).to_have_text("message deleted")
    await expect(page.locator(f"#message-{place} .body")).to_have_text("Usual place at 12:30 (edited)")
    thumbs = page.locator(f"#message-{question} .reaction").first
    await expect(thumbs).to_have_attribute("aria-pressed", "true")
    await expect(thumbs.locator(".count")).to_have_text("2")
    # The composer answers bob's edited message; the pointer rests on carol's reply (its actions show).
    await (await toolbar(page.locator(f"#message-{place}"))).get_by_role("button", name="Reply").click()
    await page.get_by_role("textbox", name="Message").fill("Perfect, see you there")
    await toolbar(page.locator(".message[data-id]").last)
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    size = "phone" if viewport is PHONE else "desktop"
    await screenshot(page, f"changes-{size}")

    # The editor in place and the delete dialog fit the screen too.
    box = page.get_by_role("textbox", name="Message")
    await box.fill("")
    await box.press("ArrowUp")
    editor = page.get_by_role("textbox", name="Edit message")
    await expect(editor).to_have_value("Count me in! The usual place?")
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    await screenshot(page, f"changes-edit-{size}")
    await editor.press("Escape")
    await (await toolbar(bubble(page, "Count me in!"))).get_by_role("button", name="Delete").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await in_viewport(page, "#delete-dialog")
    await screenshot(page, f"changes-delete-{size}")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_be_hidden()


async def test_a_copy_of_a_message_replaces_it_only_with_a_higher_version(browsing, users):
    conversation = await sync_to_async(services.direct_conversation_get_or_create)(
        user_a=users["alice"], user_b=users["bob"]
    )
    message_id = await say(users["bob"], conversation, "As first sent")
    routes = []

    async def route(socket):
        routes.append(socket)
        socket.connect_to_server()

    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=DESKTOP, route_sockets=route)
    await chat_open(alice)
    stored = (await alice.evaluate("fetch('/api/messages/bob/').then(r => r.json())"))["results"][0]
    dm_socket = [socket for socket in routes if "/ws/dm/" in socket.url][-1]

    # A `message` frame for an id already shown (as a since-replay sends one) is an update, not a second bubble.
    newer = {**stored, "body": "Replayed, newer", "version": stored["version"] + 1}
    dm_socket.send(json.dumps({"type": "message", "message": newer}))
    await expect(alice.locator(f"#message-{message_id} .body")).to_have_text("Replayed, newer")
    await expect(alice.locator(".message[data-id]")).to_have_count(1)
    # An older copy changes nothing; the typing frame after it shows it was handled.
    dm_socket.send(json.dumps({"type": "message_update", "message": {**stored, "body": "Stale"}}))
    dm_socket.send(json.dumps({"type": "typing", "user": stored["sender"]}))
    await expect(alice.locator("#typing-indicator")).to_have_text("bob is typing…")
    await expect(alice.locator(f"#message-{message_id} .body")).to_have_text("Replayed, newer")
    await expect(alice.locator(f"#message-{message_id}")).to_have_attribute("data-version", str(newer["version"]))


async def test_an_edit_lost_with_its_connection_shows_the_stored_text_again(browsing, users):
    drop_edits = {"on": False}
    network = {"up": True}
    routes = []

    async def route(socket):
        if not network["up"]:
            await socket.close(code=1006)
            return
        routes.append(socket)
        server = socket.connect_to_server()

        def to_server(message):
            if not (drop_edits["on"] and json.loads(message)["type"] == "edit"):
                server.send(message)

        socket.on_message(to_server)
        server.on_message(lambda message: socket.send(message))

    alice = await browsing.open(users["alice"], "/messages/bob/", viewport=DESKTOP, route_sockets=route)
    await chat_open(alice)
    await send_message(alice, "Typo hree")
    mine = bubble(alice, "Typo hree")
    await expect(mine).to_have_count(1)

    # The edit frame never reaches the server; the text shows at once, unconfirmed.
    drop_edits["on"] = True
    await alice.get_by_role("textbox", name="Message").press("ArrowUp")
    editor = alice.get_by_role("textbox", name="Edit message")
    await editor.fill("Typo here")
    await editor.press("Enter")
    await expect(alice.locator(".message[data-id] .body")).to_have_text(["Typo here"])
    # The connection drops; the resume brings no change of it, so the stored text comes back.
    for socket in [socket for socket in routes if "/ws/dm/" in socket.url]:
        await socket.close(code=1006)
    await expect(alice.locator(".message[data-id] .body")).to_have_text(["Typo hree"])
    await chat_open(alice)

    # Offline, a change is refused at once and says why.
    drop_edits["on"] = False
    network["up"] = False
    for socket in [socket for socket in routes if "/ws/dm/" in socket.url]:
        await socket.close(code=1006)
    await expect(alice.locator("#chat")).to_have_attribute("data-state", "reconnecting")
    await (await toolbar(bubble(alice, "Typo hree"))).get_by_role("button", name="React with 😂").click()
    await expect(alice.locator("#chat-error")).to_have_text("You are offline: the reaction was not sent.")
    await expect(bubble(alice, "Typo hree").locator(".reactions")).to_have_count(0)
    network["up"] = True
    await alice.get_by_role("button", name="Retry now").click()
    await chat_open(alice)
    await expect(alice.locator("#chat-error")).to_be_hidden()


async def test_a_truncated_resume_reloads_the_newest_page(browsing, users):
    room = await room_with(users["carol"], users["alice"], users["bob"])
    first = await say(users["alice"], room, "Draft agenda")
    state = {"up": True, "truncate": False}
    routes = []

    async def route(socket):
        if not state["up"]:
            await socket.close(code=1006)
            return
        routes.append(socket)
        server = socket.connect_to_server()
        before_ready = {"replaying": True}

        def to_page(message):
            frame = json.loads(message)
            if state["truncate"] and before_ready["replaying"]:
                # As if more was missed than the server replays: no replay, ready says so.
                if frame["type"] != "ready":
                    return
                before_ready["replaying"] = False
                message = json.dumps({**frame, "truncated": True})
            socket.send(message)

        socket.on_message(lambda message: server.send(message))
        server.on_message(to_page)

    bob = await browsing.open(users["bob"], "/rooms/general/", viewport=DESKTOP, route_sockets=route)
    await chat_open(bob)
    state["up"] = False
    for socket in routes:
        await socket.close(code=1006)
    await expect(bob.locator("#chat")).to_have_attribute("data-state", "reconnecting")
    await change(users["alice"], room, first, "edit", body="Final agenda")
    await say(users["alice"], room, "See you at 10")

    state.update(up=True, truncate=True)
    await bob.get_by_role("button", name="Retry now").click()
    await chat_open(bob)
    # Nothing was replayed: only the page loaded again over HTTP can show this.
    await expect(bob.locator(".message[data-id] .body")).to_have_text(["Final agenda (edited)", "See you at 10"])
    await asyncio.sleep(SETTLE_S)
    await expect(bob.locator(".message[data-id]")).to_have_count(2)
