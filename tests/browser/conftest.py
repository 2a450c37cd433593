"""Playwright (async API) driving Debian's Chromium against real daphne servers.

Skipped, with the reason, on machines without /usr/bin/chromium
(`make browser-deps` installs it, and axe-core for the accessibility checks).
Screenshots go to test-artifacts/screenshots; test_daily.py's bell-, dm- and
room-{desktop,phone}.png and test_message_changes.py's changes-{desktop,phone}.png
are copied to docs/screenshots/ by hand after a look.

Why async: the sync Playwright API runs an event loop in the main thread, and
Django's sync ORM then raises SynchronousOnlyOperation. Tests here are async
(pytest-asyncio auto mode) and reach the ORM through ``sync_to_async``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Keep Chromium off the network: this machine has none, and it must not try.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1000, "height": 700}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Default timeout of every expect(...) here: generous for a loaded CI machine, and
# auto-waiting returns as soon as the condition holds.
WAIT_MS = 10_000

# pytestmark of every module here: real servers reading committed rows, and the
# session's event loop, where the shared browser lives.
BROWSER_TESTS = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.asyncio(loop_scope="session"),
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium every test here is skipped, with the reason; nothing fails."""
    if os.path.exists(CHROMIUM):
        return
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: run `make browser-deps` to enable browser tests")
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(skip)


class Browsing:
    """Opens logged-in pages and records what must never happen in them.

    - ``await browsing.open(user, path, server=None, viewport=None, route_sockets=None)``: a page
      in a new browser context (its own cookie jar) logged in as ``user``; ``route_sockets``
      (a Playwright WebSocketRoute handler) sits between the page's sockets and the server.
    - ``await browsing.new_tab(page, path)``: another tab of the same context (same user).
    - ``dialogs``: every alert/confirm/prompt message (dismissed); must stay empty.
    - ``errors``: uncaught page errors and HTTP responses >= 400; must stay empty.
    """

    def __init__(self, browser: Any, server: Any, cookie_for: Callable[[Any], str]) -> None:
        self.browser = browser
        self.server = server
        self.cookie_for = cookie_for
        self.contexts: list[Any] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    async def open(
        self, user: Any, path: str = "/", *, server: Any = None, viewport: Any = None, route_sockets: Any = None
    ) -> Any:
        server = server or self.server
        phone = viewport is not None and viewport["width"] < 600
        context = await self.browser.new_context(
            base_url=server.url, viewport=viewport or VIEWPORT, has_touch=phone, is_mobile=phone
        )
        self.contexts.append(context)
        if route_sockets is not None:
            await context.route_web_socket("**/ws/**", route_sockets)
        cookie = await sync_to_async(self.cookie_for)(user)
        name, _, value = cookie.partition("=")
        await context.add_cookies([{"name": name, "value": value, "url": server.url}])
        return await self._page(context, path)

    async def new_tab(self, page: Any, path: str = "/") -> Any:
        return await self._page(page.context, path)

    async def _page(self, context: Any, path: str) -> Any:
        page = await context.new_page()

        async def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and not response.url.endswith("/favicon.ico")
                and self.errors.append(f"HTTP {response.status}: {response.url}")
            ),
        )
        await page.goto(path)
        return page


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the session; every test gets fresh contexts in it.

    Launching costs a second or two on a busy machine, so it is shared, which puts
    the tests here on the session's event loop (``BROWSER_TESTS`` marks).
    """
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browsing(browser: Any, daphne_server: Any, cookie_for: Callable[[Any], str]) -> AsyncIterator[Browsing]:
    """Logged-in pages on the shared daphne server (or another one); no dialog, no error, ever."""
    session = Browsing(browser, daphne_server, cookie_for)
    yield session
    for context in session.contexts:
        await context.close()
    assert session.dialogs == [], "a dialog fired"
    assert session.errors == [], "page errors or failed requests"


@pytest.fixture
def screenshot() -> Callable[[Any, str], Any]:
    """``await screenshot(page, "bell")`` -> test-artifacts/screenshots/bell.png (viewport only)."""

    async def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path))
        return path

    return take
