"""The bell in a real Chromium: live badge in two tabs, dropdown, mark read, keyboard.

Its resume after a server restart is in test_restart.py.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from playwright.async_api import expect

from notifications.models import Notification
from notifications.selectors import unread_count
from social.models import Comment, Post
from tests.browser.conftest import BROWSER_TESTS
from tests.browser.helpers import comment_through_page

pytestmark = BROWSER_TESTS


@pytest.fixture
def post(users):
    """A post by alice; alice already has one unread and one read notification."""
    alice = users["alice"]
    Notification.objects.create(recipient=alice, text="Welcome to Social", url="/")
    Notification.objects.create(recipient=alice, text="An old one, already read", url="/", read_at=timezone.now())
    return Post.objects.create(author=alice, title="Hello world", body="My first post.")


async def test_comment_raises_badge_in_both_tabs_and_reading_clears_it(browsing, users, post, screenshot):
    alice_feed = await browsing.open(users["alice"], "/")
    alice_rooms = await browsing.new_tab(alice_feed, "/rooms/")
    for tab in (alice_feed, alice_rooms):
        await expect(tab.locator("#bell-badge")).to_have_text("1")
        await expect(tab.locator("#connection-status")).to_have_attribute("data-state", "open")
    bob = await browsing.open(users["bob"], "/")

    await comment_through_page(bob, post, "Nice post, Alice!")
    for tab in (alice_feed, alice_rooms):
        await expect(tab.locator("#bell-badge")).to_have_text("2")
    # Screen readers hear it: the polite live region names the news and the count.
    await expect(alice_feed.locator("#bell-live")).to_have_text(
        "New notification: bob commented on your post “Hello world”. 2 unread notifications"
    )
    assert alice_feed.url.endswith("/")  # no reload happened, the page is where it was

    await alice_feed.locator("#bell-button").click()
    await expect(alice_feed.locator("#bell-button")).to_have_attribute("aria-expanded", "true")
    items = alice_feed.locator("#bell-list .notification-item")
    await expect(items).to_have_count(3)
    newest = items.first
    comment = await sync_to_async(Comment.objects.get)(post=post)
    link = newest.locator("a.notification-link")
    await expect(link).to_have_text("bob commented on your post “Hello world”")
    await expect(link).to_have_attribute("href", f"/posts/{post.pk}/#comment-{comment.pk}")
    await expect(newest).to_have_class("notification-item unread")
    await screenshot(alice_feed, "bell")

    await newest.get_by_role("button", name="Mark read: bob commented on your post “Hello world”").click()
    for tab in (alice_feed, alice_rooms):
        await expect(tab.locator("#bell-badge")).to_have_text("1")
    await expect(newest).to_have_class("notification-item")

    await alice_feed.locator("#bell-mark-all").click()
    for tab in (alice_feed, alice_rooms):
        await expect(tab.locator("#bell-badge")).to_be_hidden()
    await expect(alice_feed.locator("#bell-list .notification-item.unread")).to_have_count(0)
    assert await sync_to_async(unread_count)(user_id=users["alice"].pk) == 0

    # The notification leads to the comment itself.
    await link.click()
    await expect(alice_feed).to_have_url(f"{browsing.server.url}/posts/{post.pk}/#comment-{comment.pk}")
    await expect(alice_feed.locator(f"#comment-{comment.pk} .body")).to_have_text("Nice post, Alice!")


async def test_bell_by_keyboard(browsing, users, post):
    page = await browsing.open(users["alice"], "/")
    button = page.locator("#bell-button")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await expect(page.locator("#bell-live")).to_have_attribute("aria-live", "polite")
    await expect(page.get_by_role("button", name="Notifications 1")).to_be_visible()

    for _ in range(20):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "bell-button":
            break
    else:
        pytest.fail("Tab never reached the bell")
    # A visible focus ring (site.css :focus-visible), not the browser's bare default.
    assert await button.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"

    await page.keyboard.press("Enter")
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#bell-dropdown")).to_be_visible()
    await expect(page.locator("#bell-list .notification-item")).to_have_count(2)
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.getElementById('bell-dropdown').contains(document.activeElement)")

    await page.keyboard.press("Escape")
    await expect(page.locator("#bell-dropdown")).to_be_hidden()
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(button).to_be_focused()

    await page.keyboard.press("Space")
    await expect(button).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("Space")
    await expect(page.locator("#bell-dropdown")).to_be_hidden()
