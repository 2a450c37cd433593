"""PostgreSQL whose connection health check runs only on a connection that sat idle.

Django's ``CONN_HEALTH_CHECKS`` sends ``SELECT 1`` before the first query of
every request, and each ``database_sync_to_async`` hop of a consumer counts as
one: every chat message paid a round trip for it, which was the margin between
one sender keeping up with 80,000 room deliveries a second or falling behind
(docs/benchmarks.md). The connections the check exists for (a restarted
server, an idle timeout on the way) die while idle, so only a connection unused
for HEALTH_CHECK_IDLE_SECONDS is checked. One that dies while busy fails that
query, as it would have after a passed check, and Django replaces it before
the next hop (``errors_occurred``).
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base

HEALTH_CHECK_IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL backend with the idle-only health check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_hop = float("-inf")

    def close_if_health_check_failed(self) -> None:
        """Skip the check when the previous hop on this connection began moments ago."""
        if self.connection is not None and self.health_check_enabled and not self.health_check_done:
            now = time.monotonic()
            if now - self.last_hop < HEALTH_CHECK_IDLE_SECONDS:
                self.health_check_done = True
            self.last_hop = now
        super().close_if_health_check_failed()
