"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.support.clients import session_cookie
from tests.support.server import DaphneServer, database_url
from tests.support.sockets import Socket, Sockets

REDIS_URL = os.environ.get("REDIS_URL", "")
DATABASE_IS_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a shared channel layer across processes)")
needs_postgres = pytest.mark.skipif(not DATABASE_IS_POSTGRES, reason="needs DATABASE_URL pointing at PostgreSQL")


@pytest.fixture(autouse=True, scope="session")
def _pooled_connections_go_back() -> Iterator[None]:
    """Worker threads of in-process sockets give their PostgreSQL connection back to the pool.

    Channels' test communicator turns ``close_old_connections`` off inside
    ``database_sync_to_async`` (to keep a test's transaction open). With the
    connection pool that keeps every executor thread's connection checked out
    after the thread is gone, and the pool runs dry a few tests later. Threads
    other than the main one (which may hold a test's transaction) close theirs
    as they do in production.
    """
    if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        yield
        return
    import threading
    from unittest import mock

    from django.db import close_old_connections

    def outside_the_main_thread() -> None:
        if threading.current_thread() is not threading.main_thread():
            close_old_connections()

    with mock.patch("channels.testing.application.no_op", outside_the_main_thread):
        yield


@pytest.fixture(autouse=True)
def _clean_counters() -> Iterator[None]:
    """Start every test with empty rate-limit counters, throttles and socket registry.

    Only this run's keys are deleted: ``cache.clear()`` would FLUSHDB the Redis
    database and with it the channel layer's groups of any other run.
    """
    from django.conf import settings
    from django.core.cache import cache

    from social.realtime import limits

    if REDIS_URL:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    else:
        cache.clear()
    limits._local_windows.clear()
    limits._local_sockets.clear()
    limits._local_connects.clear()
    limits._local_once.clear()
    yield


@pytest.fixture(autouse=True)
def _servers_settled(request: pytest.FixtureRequest, django_db_blocker: Any) -> Iterator[None]:
    """After a test that drove a server process, wait for the server's database work to end.

    A socket closed as a test ends is cleaned up by the server a moment later
    (presence rows, read markers), and on PostgreSQL the TRUNCATE that flushes
    a transactional test can deadlock with that clean-up.
    """
    yield
    if connection.vendor != "postgresql" or not {"daphne_server", "start_server"} & set(request.fixturenames):
        return
    with django_db_blocker.unblock():
        wait_for_quiet_database()


def wait_for_quiet_database(quiet_s: float = 0.25, timeout_s: float = 5.0) -> None:
    """Return once no other client of the test database has run anything for ``quiet_s``."""
    started = quiet_since = time.monotonic()
    with connection.cursor() as cursor:
        while time.monotonic() - started < timeout_s:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
            )
            if cursor.fetchone()[0]:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
            time.sleep(0.02)


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """Create a user: ``make_user("alice")``."""

    def make(username: str, password: str = "pw-for-tests-1", **extra: Any) -> Any:
        return get_user_model().objects.create_user(
            username=username, email=f"{username}@example.com", password=password, **extra
        )

    return make


@pytest.fixture
def cookie_for(db: Any) -> Callable[[Any], str]:
    """A real logged-in session for a user, as a Cookie header value."""
    return session_cookie


@pytest.fixture
def users(make_user: Callable[..., Any]) -> dict[str, Any]:
    """alice, bob and carol."""
    return {name: make_user(name) for name in ("alice", "bob", "carol")}


@pytest.fixture
def cookies(users: dict[str, Any], cookie_for: Callable[[Any], str]) -> dict[str, str]:
    """A logged-in session cookie per user."""
    return {name: cookie_for(user) for name, user in users.items()}


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    """In-process sockets: ``await sockets.open(path, cookie=...)``; those left open are closed afterwards."""
    opened = Sockets()
    yield opened
    await opened.close_all()


@pytest.fixture
def connect(cookies: dict[str, str], sockets: Sockets) -> Callable[..., Awaitable[Socket]]:
    """``await connect("alice", "/ws/dm/bob/")`` -> an accepted in-process Socket (``None``: anonymous)."""

    def open_as(name: str | None, path: str) -> Awaitable[Socket]:
        return sockets.open(path, cookie=cookies[name] if name is not None else None)

    return open_as


@pytest.fixture(scope="session")
def server_database(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """DATABASE_URL of the test database, for server processes."""
    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    yield url
    if connection.vendor == "postgresql":
        # A SIGKILLed server's connection can linger a moment; end it so the
        # test database can be dropped.
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(scope="session")
def daphne_server(server_database: str) -> Iterator[DaphneServer]:
    """One real daphne process serving the app for the whole session.

    Tests that use it need ``@pytest.mark.django_db(transaction=True)`` so the
    rows they write are committed where the server can read them.
    """
    server = DaphneServer(database=server_database, name="shared").start()
    yield server
    server.stop()


@pytest.fixture
def start_server(server_database: str) -> Iterator[Callable[..., DaphneServer]]:
    """Start extra daphne processes for one test (stopped afterwards)."""
    started: list[DaphneServer] = []

    def start(name: str = "server", **env: str) -> DaphneServer:
        server = DaphneServer(database=server_database, name=name, extra_env=env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
