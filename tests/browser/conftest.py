"""Playwright driving Debian's Chromium against a real daphne server.

Skipped, with the reason, on machines without /usr/bin/chromium
(`make browser-deps` installs it). Screenshots go to test-artifacts/screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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

if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser-deps` to enable browser tests", allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser: Any, daphne_server: Any, cookie_for: Callable[[Any], str]) -> Iterator[Callable[..., Any]]:
    """``new_page(user, path)``: a page in its own browser context, logged in as ``user``.

    Two calls with the same ``context`` share cookies, like two tabs.
    """
    contexts: list[Any] = []

    def open_page(user: Any, path: str = "/", context: Any = None) -> Any:
        if context is None:
            context = browser.new_context(base_url=daphne_server.url, viewport={"width": 1100, "height": 760})
            name, _, value = cookie_for(user).partition("=")
            context.add_cookies([{"name": name, "value": value, "url": daphne_server.url}])
            contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(path)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
