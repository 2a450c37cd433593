"""What a user does on the pages, shared by the browser tests."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect


async def comment_through_page(page: Any, post: Any, body: str) -> None:
    """Fill and submit the comment form of a post's page; wait until the comment shows."""
    await page.goto(f"/posts/{post.pk}/")
    await page.get_by_role("textbox", name="Comment").fill(body)
    await page.get_by_role("button", name="Comment", exact=True).click()
    await expect(page.locator(".comment .body", has_text=body)).to_be_visible()


async def chat_open(page: Any, **options: Any) -> None:
    """Wait until the chat window's socket is open (and ready for sending)."""
    await expect(page.locator("#chat")).to_have_attribute("data-state", "open", **options)


async def send_message(page: Any, text: str) -> None:
    """Type into the labelled message box and send with Enter."""
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")
