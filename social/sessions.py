"""The session engine: Django's database sessions, with the row read by one hand-written statement.

Every page request and every WebSocket handshake loads its session, and after a
restart every open tab's handshakes do at once (docs/benchmarks.md, reconnect
storm). ``load`` is the hook Django documents for a session store ("Creating a
new session store"): this one reads the row the stock engine reads, under the
same expiry rule, and handles a miss the same way, dropping the key so that the
next save makes a new one (a stale or forged cookie cannot pick its session's
key). Building the stock engine's query costs ~0.7 ms of CPU on the benchmark
machine, the statement ~0.3 ms. Writes, deletes and expiry are the stock engine's, and so
is the async ``aload`` (the service reads sessions on the sync path only).
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    """Database sessions (``django.contrib.sessions.backends.db``), loaded without the ORM's query building."""

    def load(self) -> dict[str, Any]:
        model = self.model
        connection = connections[router.db_for_read(model)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT session_data FROM {model._meta.db_table} WHERE session_key = %s AND expire_date > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return {}
        return self.decode(row[0])
