"""Markup typed by users is shown as text everywhere, live or rendered; no script ever runs."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.conftest import BROWSER_TESTS

pytestmark = BROWSER_TESTS
PAYLOAD = "<img src=x onerror=alert(1)>"


async def no_markup(page):
    """Nothing the payload could have become is in the page."""
    await expect(page.locator("main img, #bell img, main script")).to_have_count(0)


async def test_markup_in_posts_comments_notifications_and_messages_is_text(browsing, users):
    bob = await browsing.open(users["bob"], "/")
    await expect(bob.locator("#connection-status")).to_have_attribute("data-state", "open")

    # Alice posts through the feed form; the title and body carry markup, the body mentions bob.
    alice = await browsing.open(users["alice"], "/")
    await alice.get_by_label("Title").fill(PAYLOAD)
    await alice.get_by_label("Body").fill(f"{PAYLOAD} <script>alert(2)</script> hi @bob")
    await alice.get_by_role("button", name="Post", exact=True).click()
    await expect(alice.locator("h1")).to_have_text(PAYLOAD)
    await expect(alice.locator("article.post .body")).to_have_text(f"{PAYLOAD} <script>alert(2)</script> hi @bob")
    await no_markup(alice)
    post_url = alice.url

    # The mention reaches bob's bell live; its text shows the title as text.
    await expect(bob.locator("#bell-badge")).to_have_text("1")
    await expect(bob.locator("#bell-live")).to_contain_text(PAYLOAD)
    await bob.locator("#bell-button").click()
    await expect(bob.locator("#bell-list .notification-link")).to_contain_text([PAYLOAD])
    await no_markup(bob)

    # Bob comments with markup through the post's page; alice's bell shows it as text.
    await bob.goto(post_url)
    await bob.get_by_role("textbox", name="Comment").fill(PAYLOAD)
    await bob.get_by_role("button", name="Comment", exact=True).click()
    await expect(bob.locator(".comment .body")).to_have_text([PAYLOAD])
    await no_markup(bob)
    await expect(alice.locator("#bell-badge")).to_have_text("1")
    await alice.locator("#bell-button").click()
    commented = f"bob commented on your post “{PAYLOAD}”"
    await expect(alice.locator("#bell-list .notification-link")).to_have_text([commented])
    await no_markup(alice)
    await alice.goto("/notifications/")
    await expect(alice.locator("main")).to_contain_text(commented)
    await no_markup(alice)

    # A direct message with markup: text in both windows and in the inbox.
    await alice.goto("/messages/bob/")
    await bob.goto("/messages/alice/")
    for page in (alice, bob):
        await expect(page.locator("#chat")).to_have_attribute("data-state", "open")
    box = bob.get_by_role("textbox", name="Message")
    await box.fill(PAYLOAD)
    await box.press("Enter")
    for page in (alice, bob):
        await expect(page.locator(".message[data-id] .body")).to_have_text([PAYLOAD])
        await no_markup(page)
    await alice.goto("/messages/")
    await expect(alice.locator(".conversation .last-message")).to_have_text(f"bob: {PAYLOAD}")
    await no_markup(alice)

    assert browsing.dialogs == []
