"""chat.js in a real Chromium: send, receive, typing, Seen, online list, load older, text only."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm import services
from dm.models import Message
from tests.browser.conftest import BROWSER_TESTS
from tests.browser.helpers import chat_open

pytestmark = BROWSER_TESTS


async def open_chat(browsing, user, path, **options):
    """A logged-in page on a chat window whose socket is open."""
    page = await browsing.open(user, path, **options)
    await chat_open(page)
    return page


async def test_dm_send_receive_typing_and_seen(browsing, users):
    alice = await open_chat(browsing, users["alice"], "/messages/bob/")
    bob = await open_chat(browsing, users["bob"], "/messages/alice/")

    await bob.locator("#message-input").press_sequentially("typ")
    await expect(alice.locator("#typing-indicator")).to_have_text("bob is typing…")

    await alice.locator("#message-input").fill("<img src=x onerror=alert(1)> hi bob")
    await alice.locator("#message-input").press("Enter")
    own = alice.locator(".message.own[data-id]")
    await expect(own.locator(".body")).to_have_text("<img src=x onerror=alert(1)> hi bob")
    await expect(alice.locator(".message.pending")).to_have_count(0)
    await expect(bob.locator(".message[data-id]:not(.own) .body")).to_have_text("<img src=x onerror=alert(1)> hi bob")
    assert await bob.locator("img").count() == 0
    # bob's window is visible, so it reports the message read: alice sees "Seen".
    await expect(own.locator(".read-marker")).to_have_text("Seen")

    await bob.locator("#message-input").fill("line one")
    await bob.locator("#message-input").press("Shift+Enter")
    await bob.locator("#message-input").press_sequentially("line two")
    await bob.locator("#send-button").click()
    await expect(alice.locator(".message:not(.own) .body")).to_have_text("line one\nline two")
    await expect(alice.locator("#typing-indicator")).to_have_text("")


async def test_room_online_list_and_load_older(browsing, users):
    room = await sync_to_async(services.room_create)(
        creator=users["alice"], name="General", slug="general", private=False
    )
    for n in range(60):
        await sync_to_async(services.message_send)(
            sender=users["alice"], conversation=room, body=f"old {n}", client_id=None
        )
    alice = await open_chat(browsing, users["alice"], "/rooms/general/")
    await expect(alice.locator(".message[data-id]")).to_have_count(50)
    await alice.locator("#load-older").click()
    await expect(alice.locator(".message[data-id]")).to_have_count(60)
    await expect(alice.locator(".message[data-id] .body").first).to_have_text("old 0")
    await expect(alice.locator("#load-older")).to_be_hidden()

    # A public room's page is read-only until you join (the Join button's POST).
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    bob = await open_chat(browsing, users["bob"], "/rooms/general/")
    online = f'#online-list li[data-user-id="{users["bob"].pk}"]'
    await expect(alice.locator(online)).to_have_text("bob")
    await expect(bob.locator("#online-list li")).to_have_count(2)
    await bob.close()
    await expect(alice.locator(online)).to_have_count(0)


async def test_messages_typed_offline_are_sent_once_on_reconnect(browsing, users):
    network = {"down": False, "sockets": []}

    async def route(socket):
        # A proxy the test can cut: while "down", every connection attempt fails at once.
        if network["down"]:
            await socket.close(code=1012, reason="network down")
            return
        socket.connect_to_server()
        network["sockets"].append(socket)

    alice = await open_chat(browsing, users["alice"], "/messages/bob/", route_sockets=route)
    bob = await open_chat(browsing, users["bob"], "/messages/alice/")
    network["down"] = True
    for socket in network["sockets"]:
        await socket.close(code=1012, reason="network down")
    await expect(alice.locator("#chat")).to_have_attribute("data-state", "reconnecting")
    await alice.locator("#message-input").fill("written offline")
    await alice.locator("#message-input").press("Enter")
    await expect(alice.locator(".message.pending .body")).to_have_text("written offline")
    network["down"] = False
    await expect(alice.locator(".message.own[data-id] .body")).to_have_text("written offline", timeout=30000)
    await expect(alice.locator(".message.pending")).to_have_count(0)
    await expect(bob.locator(".message[data-id] .body")).to_have_text("written offline")
    assert await sync_to_async(Message.objects.filter(body="written offline").count)() == 1
