"""Publishing to channel-layer groups.

The database is the record and the channel layer only a doorbell: every push
may be lost (the layer is at-most-once, and drops over capacity), so a failure
here is logged and reported, never raised into a request, and never undoes a
stored row. Clients converge by resuming with ``?after=<id>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# How long sync code waits for a send to the Redis layer before it carries on.
SYNC_PUBLISH_WAIT_SECONDS = 2.0


async def group_send(group: str, event: dict[str, Any]) -> bool:
    """Send one event to a group from async code; False (and logged) on failure."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        await layer.group_send(group, event)
    except Exception:
        log.warning("group_send to %s failed; clients will catch up on resume", group, exc_info=True)
        return False
    return True


class _PublishingLoop:
    """One event loop in a daemon thread, per process, for sends from sync code.

    ``async_to_sync`` outside a server's event loop (a management command, a
    job, another process) starts a new loop for every call, and a Redis layer,
    which keeps its connections per loop, connects again each time: ~4 ms per
    send against ~0.8 ms through a loop that lives on.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0

    def run(self, coroutine: Coroutine[Any, Any, _T], *, on_timeout: _T) -> _T:
        """Run the coroutine on the publishing loop and wait for its result, at most
        SYNC_PUBLISH_WAIT_SECONDS; then ``on_timeout`` (the send goes on without the caller).

        The caller is a request or a job that has just committed: with Redis
        unreachable a send can take the layer's connect and socket timeouts,
        and the caller, still holding its pooled database connection, must not
        wait that long. Twenty such requests would hold the whole pool.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self.running_loop())
        try:
            return future.result(timeout=SYNC_PUBLISH_WAIT_SECONDS)
        except TimeoutError:
            log.warning("publishing took over %s s; clients will catch up on resume", SYNC_PUBLISH_WAIT_SECONDS)
            return on_timeout

    def running_loop(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            # A forked child (a prefork worker) inherits the object but not the thread.
            if self.loop is None or self.pid != os.getpid():
                self.loop, self.pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self.loop.run_forever, name="channel-layer-publisher", daemon=True).start()
            return self.loop


_publishing_loop = _PublishingLoop()


def run_sync(send: Callable[..., Coroutine[Any, Any, _T]], *args: Any, on_timeout: _T) -> _T:
    """Run a publishing coroutine function from sync code (``on_timeout``: the result when a
    Redis send takes too long, see ``_PublishingLoop.run``).

    The in-memory layer's queues belong to the event loop that serves the
    sockets, so its sends go through ``async_to_sync`` (which hands them to
    that loop when called under ``sync_to_async``); a Redis layer works from
    any loop, so its sends share one long-lived loop.
    """
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        return async_to_sync(send)(*args)
    return _publishing_loop.run(send(*args), on_timeout=on_timeout)


def group_send_sync(group: str, event: dict[str, Any]) -> bool:
    """Send one event to a group from sync code (views, commands, threads)."""
    return run_sync(group_send, group, event, on_timeout=False)


def group_send_many_sync(events: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    """``group_send_many`` from sync code: whether each event went out."""
    return run_sync(group_send_many, events, on_timeout=[False] * len(events))


async def group_send_many(events: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    """Send many (group, event) pairs at once; whether each went out (logged when not).

    A layer with its own batch method (the pub/sub layer pipelines them into
    one Redis round trip, which then succeeds or fails as a whole) gets the
    whole batch. Any other layer gets concurrent ``group_send`` calls, one
    group's events after one another so that they arrive in order.
    """
    send_batch = getattr(get_channel_layer(), "group_send_many", None)
    if send_batch is None:
        by_group: dict[str, list[int]] = {}
        for index, (group, _) in enumerate(events):
            by_group.setdefault(group, []).append(index)
        sent = [False] * len(events)

        async def send_in_order(indexes: list[int]) -> None:
            for index in indexes:
                sent[index] = await group_send(*events[index])

        await asyncio.gather(*(send_in_order(indexes) for indexes in by_group.values()))
        return sent
    try:
        await send_batch(events)
    except Exception:
        log.warning("sending %d events failed; clients will catch up on resume", len(events), exc_info=True)
        return [False] * len(events)
    return [True] * len(events)


def send_many_on_commit(events: Callable[[], list[tuple[str, dict[str, Any]]]]) -> None:
    """Like send_on_commit for a batch: one hop to the event loop for all of them."""

    def publish() -> None:
        group_send_many_sync(events())

    transaction.on_commit(publish, robust=True)


def send_on_commit(group: str, event: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
    """Send when the current transaction commits; nothing if it rolls back.

    ``event`` may be a callable so that counts in the frame are read after the
    commit. Outside a transaction the send happens at once.
    """

    def publish() -> None:
        group_send_sync(group, event() if callable(event) else event)

    # robust: a failing publish must not stop the other on_commit callbacks.
    transaction.on_commit(publish, robust=True)
