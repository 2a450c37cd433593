"""Django's PostgreSQL backend on its connection pool, health-checking only idle connections.

The settings (``social.config.database_config``) run PostgreSQL through
Django's pool with the pool's own check off; ``health`` says which
connections to check and why.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from social.db.postgresql import health


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL backend: a dead idle connection from the pool is swapped for a live one."""

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.pool is None:
            return connection
        # After a server restart every pooled connection is dead: at most all of them are tried.
        for _ in range(self.pool.max_size):
            if health.usable(connection):
                return connection
            self.pool.putconn(connection)  # the pool discards a broken connection
            connection = super().get_new_connection(conn_params)
        return connection

    def _close(self) -> None:
        if self.pool is not None and self.connection is not None:
            health.returned(self.connection)
        super()._close()
