"""Django's Redis cache with one client (and so one connection pool) per process.

Under ASGI, Django keeps a cache object per asyncio context, and its
``RedisCache`` builds its client, with a new redis-py connection pool, per cache
object: every request and every socket handshake that touched the cache (the
flood and write limits, allauth's rate limits) opened a new TCP connection to
Redis and left it to the garbage collector (the Django bug behind
https://github.com/django/django/pull/18459).

``SharedRedisCache`` hands every cache object of the process the same client
for the same servers and options; redis-py's pools are thread-safe and reset
themselves after a fork. It relies on ``RedisCache``'s private ``_servers``,
``_options``, ``_class`` and ``_cache`` of the pinned Django release
(``DJANGO_VERSIONS``); on any other release it behaves as the stock backend
(with one warning), and tests/social/test_cache.py fails until it is checked again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import django
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

log = logging.getLogger(__name__)

# Django releases whose RedisCache internals this module was checked against.
DJANGO_VERSIONS = ("5.2",)

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()
_warned = False


def applies() -> bool:
    """True on the Django releases this module was checked against."""
    return ".".join(map(str, django.VERSION[:2])) in DJANGO_VERSIONS and isinstance(
        RedisCache.__dict__.get("_cache"), cached_property
    )


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("Django %s is not %s: one Redis client per cache object", django.get_version(), DJANGO_VERSIONS)


class SharedRedisCache(RedisCache):
    """``RedisCache`` whose client is shared by every cache object of the process."""

    @cached_property
    def _cache(self) -> Any:
        if not applies():
            _warn_once()
            return self._class(self._servers, **self._options)
        key = (self._class, tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                # The client makes its pools on first use without a lock: two threads' first
                # calls at once can each make one, and one is dropped. Once per process.
                client = _clients[key] = self._class(self._servers, **self._options)
        return client

    def close(self, **kwargs: Any) -> None:
        """Nothing: the client is the process's, not this request's (Django calls this when a request ends)."""
