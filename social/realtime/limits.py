"""Flood limits and the per-user socket registry.

Per-connection limits live in the consumer (a token bucket: nothing else needs
them). Per-user limits and the socket count must hold across server processes,
so with ``REDIS_URL`` they live in Redis; without it the service runs as one
process and a process-local store is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

try:
    import redis.asyncio as aioredis
except ImportError:  # pragma: no cover - redis is in requirements.txt
    aioredis = None

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def _redis() -> Any | None:
    """One asyncio Redis client per event loop (tests run several loops)."""
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _clients[loop] = client
    return client


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, up to ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


_local_windows: dict[tuple[int, int], int] = {}
_local_sockets: dict[int, dict[str, float]] = {}
_local_connects: dict[tuple[int, int], int] = {}


async def user_frame_allowed(user_id: int) -> bool:
    """Count one frame against the user's per-second budget across all sockets and processes.

    With Redis, the frames of every socket of this process that arrive in one
    turn of the event loop are counted together (``_FrameCounts``): one
    pipelined round trip for all of them instead of one per frame, with the
    same answer each would have had on its own.
    """
    limit = settings.REALTIME["USER_RATE_PER_SECOND"]
    window = int(time.time())
    client = _redis()
    if client is None:
        key = (user_id, window)
        if len(_local_windows) > 10_000:
            for stale in [k for k in _local_windows if k[1] < window - 1]:
                del _local_windows[stale]
        _local_windows[key] = _local_windows.get(key, 0) + 1
        return _local_windows[key] <= limit
    counts = _frame_counts.get(asyncio.get_running_loop())
    if counts is None:
        counts = _frame_counts[asyncio.get_running_loop()] = _FrameCounts(client)
    count = await counts.add(user_id, window)
    return count is None or count <= limit


class _FrameCounts:
    """Per event loop: the frames waiting to be counted in Redis, counted in one pipeline per loop turn."""

    def __init__(self, client: Any) -> None:
        self.client = client
        # (user, window) -> the futures of its frames, in arrival order.
        self.waiting: dict[tuple[int, int], list[asyncio.Future[int | None]]] = {}
        self.flushing: set[asyncio.Task[None]] = set()

    def add(self, user_id: int, window: int) -> asyncio.Future[int | None]:
        """The frame's place in the user's window over all processes (None: Redis failed, fail open)."""
        loop = asyncio.get_running_loop()
        if not self.waiting:
            loop.call_soon(self._start_flush)
        future: asyncio.Future[int | None] = loop.create_future()
        self.waiting.setdefault((user_id, window), []).append(future)
        return future

    def _start_flush(self) -> None:
        # The loop keeps only weak references to tasks.
        task = asyncio.ensure_future(self.flush())
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def flush(self) -> None:
        waiting, self.waiting = self.waiting, {}
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for user_id, window in waiting:
                    key = f"{settings.REDIS_KEY_PREFIX}:rt:rate:{user_id}:{window}"
                    pipe.incrby(key, len(waiting[user_id, window]))
                    pipe.expire(key, 3)
                replies = await pipe.execute()
        except Exception:
            # Redis down: fail open; the per-connection bucket still applies.
            replies = None
        for index, futures in enumerate(waiting.values()):
            # INCRBY answered the total after this turn's frames: the first of
            # them is the total minus the others.
            total = replies[2 * index] if replies is not None else None
            for place, future in enumerate(futures):
                if not future.done():
                    future.set_result(None if total is None else total - len(futures) + place + 1)


_frame_counts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _FrameCounts] = weakref.WeakKeyDictionary()


_local_once: dict[str, float] = {}


async def first_within(key: str, seconds: float) -> bool:
    """True for the first call with ``key`` in ``seconds`` (shared by processes with Redis).

    One atomic ``SET NX PX`` on the asyncio client: no thread hop, so throttling
    typing frames never waits behind database work.
    """
    if seconds <= 0:
        return True
    now = time.monotonic()
    client = _redis()
    if client is None:
        if _local_once.get(key, 0) > now:
            return False
        if len(_local_once) > 10_000:
            for stale in [k for k, until in _local_once.items() if until <= now]:
                del _local_once[stale]
        _local_once[key] = now + seconds
        return True
    try:
        return bool(await client.set(f"{settings.REDIS_KEY_PREFIX}:rt:once:{key}", 1, nx=True, px=int(seconds * 1000)))
    except Exception:
        return True


@dataclass(frozen=True)
class Admission:
    """What the registry knew when a socket opened."""

    # The user's live sockets, over all processes, this one included.
    sockets: int
    # Sockets the user opened in this minute, over all processes, this one included.
    connects: int


def _connect_window() -> int:
    return int(time.time() // 60)


async def socket_opened(user_id: int, channel_name: str) -> Admission:
    """Record an opening socket and count the connect: one Redis round trip with Redis."""
    now = time.time()
    stale = now - settings.REALTIME["PRESENCE_STALE_SECONDS"]
    window = _connect_window()
    client = _redis()
    if client is None:
        sockets = _local_sockets.setdefault(user_id, {})
        sockets[channel_name] = now
        for name in [n for n, seen in sockets.items() if seen < stale]:
            del sockets[name]
        if len(_local_connects) > 10_000:
            for old in [key for key in _local_connects if key[1] < window]:
                del _local_connects[old]
        key = (user_id, window)
        _local_connects[key] = _local_connects.get(key, 0) + 1
        return Admission(sockets=len(sockets), connects=_local_connects[key])
    key = f"{settings.REDIS_KEY_PREFIX}:rt:sockets:{user_id}"
    connects_key = f"{settings.REDIS_KEY_PREFIX}:rt:connects:{user_id}:{window}"
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {channel_name: now})
            pipe.zremrangebyscore(key, 0, stale)
            pipe.zcard(key)
            pipe.expire(key, settings.REALTIME["PRESENCE_STALE_SECONDS"] * 2)
            pipe.incr(connects_key)
            pipe.expire(connects_key, 120)
            _, _, count, _, connects, _ = await pipe.execute()
    except Exception:
        # Redis down: fail open; sockets still need a valid session.
        return Admission(sockets=1, connects=1)
    return Admission(sockets=count, connects=connects)


async def socket_alive(user_id: int, channel_name: str) -> None:
    """Refresh an open socket's registry entry (every heartbeat).

    Entries older than PRESENCE_STALE_SECONDS no longer count, which is what
    frees the slots of a killed process; so a live socket must refresh well
    within that, or the cap forgets it.
    """
    now = time.time()
    client = _redis()
    if client is None:
        _local_sockets.setdefault(user_id, {})[channel_name] = now
        return
    key = f"{settings.REDIS_KEY_PREFIX}:rt:sockets:{user_id}"
    with contextlib.suppress(Exception):
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {channel_name: now})
            pipe.expire(key, settings.REALTIME["PRESENCE_STALE_SECONDS"] * 2)
            await pipe.execute()


async def socket_closed(user_id: int, channel_name: str) -> None:
    """Forget a closed socket."""
    client = _redis()
    if client is None:
        _local_sockets.get(user_id, {}).pop(channel_name, None)
        return
    with contextlib.suppress(Exception):
        await client.zrem(f"{settings.REDIS_KEY_PREFIX}:rt:sockets:{user_id}", channel_name)
