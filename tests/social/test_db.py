"""The PostgreSQL connection pool's health check: only connections that sat idle are checked."""

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection
from psycopg_pool import ConnectionPool

from social.db.postgresql import health

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend (DATABASE_URL)"),
]


def hop():
    """What each database_sync_to_async call of a consumer does: a new 'request', then a query."""
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def terminate(*, only_pid: int | None = None) -> None:
    """End server connections to the test database from the outside, as a restart would."""
    params = connection.get_connection_params()
    for option in ("cursor_factory", "server_side_binding", "pool"):
        params.pop(option, None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND datname = current_database() AND (%(pid)s::integer IS NULL OR pid = %(pid)s)",
            {"pid": only_pid},
        )


def test_the_service_runs_on_the_pool():
    hop()
    assert connection.pool is not None and connection.pool.get_stats()["pool_size"] >= 1


def test_hops_moments_apart_send_no_check(monkeypatch):
    checks = []
    check = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection", lambda conn: checks.append(1) or check(conn))
    hop()
    for _ in range(5):
        hop()
    assert len(checks) <= 1


def test_after_a_restart_the_connections_that_sat_idle_are_checked_and_replaced(monkeypatch):
    hop()
    terminate()
    monkeypatch.setattr(health, "HEALTH_CHECK_IDLE_SECONDS", 0.0)  # as if every one had sat idle
    hop()  # the check finds the pool's connections dead and a new one answers


def test_a_connection_that_dies_while_busy_fails_one_query_then_is_replaced():
    close_old_connections()
    connection.ensure_connection()
    terminate(only_pid=connection.connection.info.backend_pid)
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    hop()
