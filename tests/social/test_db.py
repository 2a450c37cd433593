"""The PostgreSQL backend's health check: only connections that sat idle are checked."""

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection

from social.db.postgresql.base import HEALTH_CHECK_IDLE_SECONDS

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend (DATABASE_URL)"),
]


def hop():
    """What each database_sync_to_async call of a consumer does: a new 'request', then a query."""
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def kill_backend():
    """End this thread's server connection from the outside, as a restart would."""
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("server_side_binding", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_hops_moments_apart_send_no_check(monkeypatch):
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    hop()
    for _ in range(5):
        hop()
    assert len(checks) <= 1


def test_a_connection_that_sat_idle_is_checked_and_a_dead_one_replaced():
    hop()
    kill_backend()
    connection.last_hop -= HEALTH_CHECK_IDLE_SECONDS + 1
    hop()  # the check finds it dead and a new connection answers


def test_a_connection_that_dies_while_busy_fails_one_query_then_is_replaced():
    hop()
    kill_backend()
    with pytest.raises(OperationalError):
        hop()
    hop()
