"""The bell in a real Chromium: live badge, dropdown, keyboard, mark read, two tabs, inbox badge."""

from __future__ import annotations

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async

from notifications.models import Notification
from social.models import Post
from tests.support.http import Browserish

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture
async def new_page(daphne_server, cookie_for):
    """``await new_page(cookie, path, context=None)``; Playwright's async API, so the ORM stays usable."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
        )

        async def open_page(cookie, path="/", context=None):
            if context is None:
                context = await browser.new_context(base_url=daphne_server.url)
                name, _, value = cookie.partition("=")
                await context.add_cookies([{"name": name, "value": value, "url": daphne_server.url}])
            page = await context.new_page()
            await page.goto(path)
            return page

        yield open_page
        await browser.close()


def comment(server, cookie, post_id, body):
    return asyncio.to_thread(Browserish(server, cookie).post_form, f"/posts/{post_id}/", {"body": body})


@pytest.fixture
def setup(alice, bob, cookie_for):
    """A post by alice (its title has markup in it) and both users' session cookies."""
    post = Post.objects.create(author=alice, title="Hello <b>there</b>", body="first")
    return post, cookie_for(alice), cookie_for(bob)


async def wait_badge(page, text):
    from playwright.async_api import expect

    await expect(page.locator("#bell-badge")).to_have_text(text, timeout=10000)


async def wait_open(page):
    from playwright.async_api import expect

    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open", timeout=10000)


async def test_bell_live_dropdown_keyboard_and_two_tabs(new_page, daphne_server, alice, setup):
    post, alice_cookie, bob_cookie = setup
    await sync_to_async(Notification.objects.create)(recipient=alice, text="older one", url="/")
    errors: list[str] = []
    tab1 = await new_page(alice_cookie, "/")
    tab1.on(
        "console", lambda message: message.type == "error" and "404" not in message.text and errors.append(message.text)
    )
    tab1.on("response", lambda response: response.status >= 400 and errors.append(response.url))
    tab2 = await new_page(alice_cookie, "/notifications/", context=tab1.context)
    assert await tab1.locator("#bell-badge").text_content() == "1"
    await wait_open(tab1)
    await wait_open(tab2)

    await comment(daphne_server, bob_cookie, post.pk, "nice")
    await wait_badge(tab1, "2")
    await wait_badge(tab2, "2")
    assert "bob commented on your post" in await tab1.locator("#bell-live").text_content()

    await tab1.locator("#bell-button").focus()
    await tab1.keyboard.press("Enter")
    assert await tab1.locator("#bell-button").get_attribute("aria-expanded") == "true"
    items = tab1.locator("#bell-dropdown .notification-item")
    await items.nth(1).wait_for()
    assert await items.count() == 2
    first = items.nth(0)
    text = await first.locator(".notification-link").text_content()
    assert text == "bob commented on your post “Hello <b>there</b>”"
    assert "unread" in await first.get_attribute("class")
    assert await tab1.locator("#bell-dropdown b").count() == 0  # text, never markup

    await first.locator(".notification-mark-read").click()
    await wait_badge(tab2, "1")
    assert "unread" not in await first.get_attribute("class")

    await tab1.locator("#bell-mark-all").click()
    await wait_badge(tab2, "0")
    assert await tab1.locator("#bell-badge").is_hidden()
    assert await tab1.locator("#bell-dropdown .notification-item.unread").count() == 0

    await tab1.keyboard.press("Escape")
    assert await tab1.locator("#bell-dropdown").is_hidden()
    assert await tab1.locator("#bell-button").get_attribute("aria-expanded") == "false"
    assert await tab1.evaluate("document.activeElement.id") == "bell-button"
    assert [error for error in errors if not error.endswith("/favicon.ico")] == []


async def test_reconnect_resumes_without_duplicates(new_page, start_server, setup):
    post, alice_cookie, bob_cookie = setup
    server = await asyncio.to_thread(start_server, "bell-restart")
    page = await new_page(alice_cookie, server.url + "/")
    await wait_open(page)
    await comment(server, bob_cookie, post.pk, "one")
    await wait_badge(page, "1")
    await asyncio.to_thread(server.restart)
    await comment(server, bob_cookie, post.pk, "two")
    await wait_badge(page, "2")
    await page.locator("#bell-button").click()
    items = page.locator("#bell-dropdown .notification-item")
    await items.nth(1).wait_for()
    ids = await items.evaluate_all("items => items.map(item => item.dataset.id)")
    assert len(ids) == len(set(ids)) == 2
