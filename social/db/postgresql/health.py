"""Which pooled PostgreSQL connections get a health check: the ones that sat idle.

Checking every connection the pool hands out (what ``CONN_HEALTH_CHECKS``
turns on) sends ``SELECT 1`` before every ``database_sync_to_async`` hop of a
consumer: every chat message paid a round trip for it, which was the margin
between one sender keeping up with 80,000 room deliveries a second or falling
behind (docs/benchmarks.md). The connections a check exists for (a restarted
server, an idle timeout on the way) die while idle, so only a connection that
was back in the pool for HEALTH_CHECK_IDLE_SECONDS or more is checked. One
that dies while busy fails that query, as it would have after a passed check;
the pool then discards it.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from psycopg_pool import ConnectionPool

HEALTH_CHECK_IDLE_SECONDS = 1.0

# Connection -> when it went back to the pool; forgotten with the connection.
_returned_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def returned(connection: Any) -> None:
    """Note that ``connection`` is going back to the pool now."""
    _returned_at[connection] = time.monotonic()


def usable(connection: Any) -> bool:
    """False for a dead connection that sat idle; True for any other (unchecked when it was busy moments ago)."""
    if time.monotonic() - _returned_at.get(connection, float("-inf")) < HEALTH_CHECK_IDLE_SECONDS:
        return True
    try:
        ConnectionPool.check_connection(connection)
    except Exception:
        return False
    return True
