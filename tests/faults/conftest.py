"""Two (or more) real daphne processes sharing Redis and the database."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dm.models import Conversation, Membership
from tests.support.redis_server import PrivateRedis

# On each test, not on the module, so the skip summary counts every test that did not run.
needs_shared_layer = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="scale-out tests need REDIS_URL (and DATABASE_URL for PostgreSQL); CI sets both",
)


GENEROUS_LIMITS = {"WS_RATE_PER_SECOND": "500", "WS_RATE_BURST": "500", "WS_USER_RATE_PER_SECOND": "1000"}


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis only this test's servers use, so the test may stop it."""
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis().start()
    yield redis
    redis.stop()


@pytest.fixture
def two_servers(start_server: Callable[..., Any]) -> tuple[Any, Any]:
    """Processes A and B on the shared Redis and database (flood limits raised for scripted senders)."""
    return start_server("A", **GENEROUS_LIMITS), start_server("B", **GENEROUS_LIMITS)


@pytest.fixture
def make_room(db: Any) -> Callable[..., Conversation]:
    def make(slug: str, *members: Any, private: bool = False) -> Conversation:
        room = Conversation.objects.create(kind="room", slug=slug, name=slug.title(), private=private)
        for member in members:
            Membership.objects.create(conversation=room, user=member)
        return room

    return make
