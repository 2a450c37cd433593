"""chat.js in a real Chromium: send, receive, typing, Seen, online list, load older, text only."""

from __future__ import annotations

import os

import pytest
from asgiref.sync import sync_to_async

from dm import services
from dm.models import Message

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.e2e]
WAIT = 10000


@pytest.fixture
async def new_page(daphne_server):
    """``await new_page(cookie, path)``: a logged-in page in its own browser context."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
        )
        errors: list[str] = []

        async def open_page(cookie, path, route_sockets=None):
            context = await browser.new_context(base_url=daphne_server.url)
            if route_sockets is not None:
                await context.route_web_socket("**/ws/**", route_sockets)
            name, _, value = cookie.partition("=")
            await context.add_cookies([{"name": name, "value": value, "url": daphne_server.url}])
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "response",
                lambda response: (
                    response.status >= 400 and "favicon" not in response.url and errors.append(response.url)
                ),
            )
            await page.goto(path)
            await expect(page.locator("#chat")).to_have_attribute("data-state", "open", timeout=WAIT)
            return page

        yield open_page
        await browser.close()
        assert errors == []


def expect(locator):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def test_dm_send_receive_typing_and_seen(new_page, users, cookies):
    alice = await new_page(cookies["alice"], "/messages/bob/")
    bob = await new_page(cookies["bob"], "/messages/alice/")

    await bob.locator("#message-input").press_sequentially("typ")
    await expect(alice.locator("#typing-indicator")).to_have_text("bob is typing…", timeout=WAIT)

    await alice.locator("#message-input").fill("<img src=x onerror=alert(1)> hi bob")
    await alice.locator("#message-input").press("Enter")
    own = alice.locator(".message.own[data-id]")
    await expect(own.locator(".body")).to_have_text("<img src=x onerror=alert(1)> hi bob", timeout=WAIT)
    await expect(alice.locator(".message.pending")).to_have_count(0)
    await expect(bob.locator(".message[data-id]:not(.own) .body")).to_have_text(
        "<img src=x onerror=alert(1)> hi bob", timeout=WAIT
    )
    assert await bob.locator("img").count() == 0
    # bob's window is visible, so it reports the message read: alice sees "Seen".
    await expect(own.locator(".read-marker")).to_have_text("Seen", timeout=WAIT)

    await bob.locator("#message-input").fill("line one")
    await bob.locator("#message-input").press("Shift+Enter")
    await bob.locator("#message-input").press_sequentially("line two")
    await bob.locator("#send-button").click()
    await expect(alice.locator(".message:not(.own) .body")).to_have_text("line one\nline two", timeout=WAIT)
    await expect(alice.locator("#typing-indicator")).to_have_text("")


async def test_room_online_list_and_load_older(new_page, users, cookies):
    room = await sync_to_async(services.room_create)(
        creator=users["alice"], name="General", slug="general", private=False
    )
    for n in range(60):
        await sync_to_async(services.message_send)(
            sender=users["alice"], conversation=room, body=f"old {n}", client_id=None
        )
    alice = await new_page(cookies["alice"], "/rooms/general/")
    await expect(alice.locator(".message[data-id]")).to_have_count(50)
    await alice.locator("#load-older").click()
    await expect(alice.locator(".message[data-id]")).to_have_count(60, timeout=WAIT)
    await expect(alice.locator(".message[data-id] .body").first).to_have_text("old 0")
    await expect(alice.locator("#load-older")).to_be_hidden()

    # A public room's page is read-only until you join (the Join button's POST).
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    bob = await new_page(cookies["bob"], "/rooms/general/")
    online = f'#online-list li[data-user-id="{users["bob"].pk}"]'
    await expect(alice.locator(online)).to_have_text("bob", timeout=WAIT)
    await expect(bob.locator("#online-list li")).to_have_count(2)
    await bob.close()
    await expect(alice.locator(online)).to_have_count(0, timeout=WAIT)


async def test_messages_typed_offline_are_sent_once_on_reconnect(new_page, users, cookies):
    network = {"down": False, "sockets": []}

    async def route(socket):
        # A proxy the test can cut: while "down", every connection attempt fails at once.
        if network["down"]:
            await socket.close(code=1012, reason="network down")
            return
        socket.connect_to_server()
        network["sockets"].append(socket)

    alice = await new_page(cookies["alice"], "/messages/bob/", route_sockets=route)
    bob = await new_page(cookies["bob"], "/messages/alice/")
    network["down"] = True
    for socket in network["sockets"]:
        await socket.close(code=1012, reason="network down")
    await expect(alice.locator("#chat")).to_have_attribute("data-state", "reconnecting", timeout=WAIT)
    await alice.locator("#message-input").fill("written offline")
    await alice.locator("#message-input").press("Enter")
    await expect(alice.locator(".message.pending .body")).to_have_text("written offline")
    network["down"] = False
    await expect(alice.locator(".message.own[data-id] .body")).to_have_text("written offline", timeout=30000)
    await expect(alice.locator(".message.pending")).to_have_count(0)
    await expect(bob.locator(".message[data-id] .body")).to_have_text("written offline", timeout=WAIT)
    assert await sync_to_async(Message.objects.filter(body="written offline").count)() == 1
