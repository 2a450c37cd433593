"""What a user does on the pages, shared by the browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


async def assert_accessible(page: Any) -> None:
    """axe-core finds no serious or critical violation in the page as it is now."""
    if not AXE.exists():
        pytest.skip("no node_modules/axe-core: run `make browser-deps`")
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text() + "\n;true")
    result = await page.evaluate("window.axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"axe on {page.url}: {bad}"


async def no_horizontal_scroll(page: Any) -> None:
    """The page is not wider than its viewport."""
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page {widths[0]}px wide in a {widths[1]}px viewport"


async def in_viewport(page: Any, selector: str) -> None:
    """The element is entirely inside the visible viewport."""
    box = await page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 1, (selector, box, size)
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, (selector, box, size)
