"""Waiting for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

POLL_S = 0.01


async def wait_for(predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that, or fail the test."""
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


async def until_subscribed(layer: Any, group: str, timeout: float = 5.0) -> None:
    """Return once Redis has a subscriber for the pub/sub layer's ``group`` (and its batch channel).

    SUBSCRIBE and PUBLISH travel on different Redis connections, so a message
    published right after ``group_add`` may pass before the subscription lands.
    """
    import redis.asyncio

    loop_layer = layer._get_layer()
    names = [loop_layer._get_group_channel_name(group), loop_layer.batch_channel]
    client = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])

    async def subscribed() -> bool:
        return all(count > 0 for _, count in await client.pubsub_numsub(*names))

    try:
        await wait_for(subscribed, timeout, what=f"a subscriber for {names}")
    finally:
        await client.aclose()


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """The blocking twin of ``wait_for``, for sync tests that watch other processes."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        time.sleep(POLL_S * 5)
