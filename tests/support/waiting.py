"""Waiting for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

POLL_S = 0.01


async def wait_for(predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        await asyncio.sleep(POLL_S)


def wait_for_sync(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """``wait_for`` for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        time.sleep(POLL_S)
