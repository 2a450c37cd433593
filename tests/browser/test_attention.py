"""Attention in a real browser: desktop notifications while hidden, the title count, grouping live,
the settings page and the mute buttons, at 1280x800 and on a 390x844 phone."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from dm import services
from tests.browser.conftest import BROWSER_TESTS, DESKTOP, PHONE
from tests.browser.helpers import (
    assert_accessible,
    chat_open,
    comment_through_page,
    no_horizontal_scroll,
    send_message,
)

pytestmark = BROWSER_TESTS
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]

# Records every desktop notification and permission request, and lets the test say
# whether the tab is hidden (a headless page is always "visible").
INSTRUMENT = """
(() => {
  window.__shown = [];
  window.__asked = 0;
  window.__hidden = false;
  const Real = window.Notification;
  function Recording(title, options) {
    window.__shown.push({title: title, body: options && options.body, tag: options && options.tag});
    return new Real(title, options);
  }
  Object.defineProperty(Recording, "permission", {get: () => Real.permission});
  Recording.requestPermission = function () {
    window.__asked += 1;
    return Promise.resolve(Real.permission);
  };
  window.Notification = Recording;
  Object.defineProperty(Document.prototype, "hidden", {configurable: true, get: () => window.__hidden});
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get: () => (window.__hidden ? "hidden" : "visible"),
  });
})();
"""


@pytest.fixture
def post(users):
    """A post by alice."""
    from social.models import Post

    return Post.objects.create(author=users["alice"], title="Hello world", body="My first post.")


async def instrumented(browsing, user, path, *, grant, viewport=DESKTOP):
    page = await browsing.open(user, path, viewport=viewport)
    if grant:
        await page.context.grant_permissions(["notifications"], origin=browsing.server.url)
    await page.context.add_init_script(INSTRUMENT)
    await page.reload()
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    return page


async def shown(page):
    return await page.evaluate("window.__shown")


async def test_hidden_tab_shows_desktop_notifications_and_the_title_counts(browsing, users, post):
    alice = await instrumented(browsing, users["alice"], "/", grant=True)
    await expect(alice).to_have_title("Feed · Social")
    await expect(alice.locator("#bell-desktop")).to_be_hidden()  # already allowed: nothing to ask
    await alice.evaluate("window.__hidden = true")

    bob = await browsing.open(users["bob"], f"/posts/{post.pk}/")
    await comment_through_page(bob, post, "Nice post!")
    await expect(alice).to_have_title("(1) Feed · Social")
    await alice.wait_for_function("window.__shown.length === 1")
    (first,) = await shown(alice)
    assert first["title"] == "Social"
    assert first["body"] == "bob commented on your post “Hello world”"

    await bob.goto("/messages/alice/")
    await chat_open(bob)
    await send_message(bob, "Did you see my comment?")
    await expect(alice).to_have_title("(2) Feed · Social")
    await alice.wait_for_function("window.__shown.length === 2")
    message = (await shown(alice))[1]
    assert (message["title"], message["body"]) == ("Message from bob", "Did you see my comment?")

    # Visible again: news still counts in the title and the bell, but no desktop notification.
    await alice.evaluate("window.__hidden = false")
    page_tab = await browsing.new_tab(alice, "/notifications/")
    rows = page_tab.locator("#notification-page-list .notification-row")
    await expect(rows).to_have_count(1)
    carol = await browsing.open(users["carol"], f"/posts/{post.pk}/")
    await comment_through_page(carol, post, "Me too!")
    await alice.locator("#bell-button").click()
    items = alice.locator("#bell-list .notification-item")
    # Grouped live: bob's row was replaced by the group, the count stays 1.
    await expect(items).to_have_count(1)
    await expect(items.locator(".notification-link")).to_have_text("carol and bob commented on your post “Hello world”")
    await expect(alice.locator("#bell-badge")).to_have_text("1")
    await expect(alice).to_have_title("(2) Feed · Social")
    # The notifications page in the other tab swaps bob's row for the group as well.
    await expect(rows).to_have_count(1)
    await expect(rows.locator(".notification-text")).to_have_text("carol and bob commented on your post “Hello world”")
    assert len(await shown(alice)) == 2


async def test_a_muted_conversation_raises_no_desktop_notification(browsing, users):
    conversation = await sync_to_async(services.direct_conversation_get_or_create)(
        user_a=users["alice"], user_b=users["bob"]
    )
    await sync_to_async(services.conversation_mute_set)(user=users["alice"], conversation=conversation, muted=True)
    alice = await instrumented(browsing, users["alice"], "/messages/", grant=True)
    await alice.evaluate("window.__hidden = true")
    bob = await browsing.open(users["bob"], "/messages/alice/")
    await chat_open(bob)
    await send_message(bob, "psst")
    conversation_row = alice.locator("#conversation-list .conversation")
    await expect(conversation_row.locator(".last-message")).to_have_text("bob: psst")
    await expect(alice.locator("#messages-badge")).to_be_hidden()
    await expect(alice).to_have_title("Messages · Social")
    assert await shown(alice) == []


@pytest.mark.parametrize("viewport", SIZES)
async def test_permission_is_asked_only_from_a_button(browsing, users, screenshot, viewport):
    page = await instrumented(browsing, users["alice"], "/settings/notifications/", grant=False, viewport=viewport)
    assert await page.evaluate("window.__asked") == 0  # never on page load
    button = page.get_by_role("button", name="Enable desktop notifications").last
    await expect(page.locator("#desktop-enable")).to_be_visible()
    await expect(page.locator("#desktop-state")).to_have_text("Desktop notifications are off.")
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    await screenshot(page, f"settings-{'phone' if viewport is PHONE else 'desktop'}")
    await button.click()
    await page.wait_for_function("window.__asked === 1")
    # The bell offers it too.
    await page.locator("#bell-button").click()
    await expect(page.locator("#bell-desktop")).to_be_visible()
    await page.locator("#bell-desktop").click()
    await page.wait_for_function("window.__asked === 2")


@pytest.mark.parametrize("viewport", SIZES)
async def test_the_settings_form_saves_and_shows_errors(browsing, users, screenshot, viewport):
    page = await browsing.open(users["alice"], "/settings/notifications/", viewport=viewport)
    await page.get_by_label("Comments on my posts").uncheck()
    delay = page.get_by_label("Email me about what is still unread after (minutes; 0 turns email off)")
    await delay.fill("2000")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#delay-error")).to_be_visible()
    await expect(delay).to_have_attribute("aria-invalid", "true")
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    await screenshot(page, f"settings-error-{'phone' if viewport is PHONE else 'desktop'}")
    browsing.errors.clear()  # the 400 of the refused form is what this test wants
    await delay.fill("30")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".flash")).to_contain_text("Your notification settings are saved.")
    await expect(page.get_by_label("Comments on my posts")).not_to_be_checked()
    await expect(delay).to_have_value("30")


@pytest.mark.parametrize("viewport", SIZES)
async def test_mute_buttons_on_the_dm_room_and_post_pages(browsing, users, post, screenshot, viewport):
    size = "phone" if viewport is PHONE else "desktop"
    await sync_to_async(services.room_create)(creator=users["alice"], name="General", slug="general", private=False)
    page = await browsing.open(users["alice"], "/messages/bob/", viewport=viewport)
    await chat_open(page)
    mute = page.locator("#mute-button")
    await expect(mute).to_have_text("Mute")
    await mute.click()
    await expect(mute).to_have_text("Unmute")
    await chat_open(page)
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    await screenshot(page, f"mute-dm-{size}")

    await page.goto("/rooms/general/")
    await chat_open(page)
    await page.locator("#mute-button").click()
    await expect(page.locator("#mute-button")).to_have_text("Unmute")
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    await screenshot(page, f"mute-room-{size}")

    await page.goto(f"/posts/{post.pk}/")
    await page.get_by_role("button", name="Mute this post").click()
    await expect(page.get_by_role("button", name="Unmute this post")).to_be_visible()
    await no_horizontal_scroll(page)
    await assert_accessible(page)
    await screenshot(page, f"mute-post-{size}")
    await page.goto("/api/conversations/")
    assert '"muted": true' in (await page.content())
