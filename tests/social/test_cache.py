"""One Redis client per process for Django's cache (social.cache), and sessions read through it."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore as CachedSessionStore
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from social import cache
from social.realtime.auth import session_still_valid, user_for_session
from tests.conftest import REDIS_URL, needs_redis


def test_the_pinned_django_is_the_one_checked():
    # Fails when Django moves: re-check RedisCache's internals, then DJANGO_VERSIONS.
    assert cache.applies()


def test_cache_objects_share_one_client():
    first = cache.SharedRedisCache("redis://127.0.0.1:6379/9", {})
    second = cache.SharedRedisCache("redis://127.0.0.1:6379/9", {})
    other_db = cache.SharedRedisCache("redis://127.0.0.1:6379/8", {})
    assert first._cache is second._cache
    assert other_db._cache is not first._cache


def test_stock_backend_builds_a_client_per_cache_object():
    # What social.cache works around; when this fails, Django shares clients itself.
    assert RedisCache("redis://127.0.0.1:6379/9", {})._cache is not RedisCache("redis://127.0.0.1:6379/9", {})._cache


def _connections_opened(backend: str, contexts: int) -> int:
    import redis

    info = redis.Redis.from_url(REDIS_URL)
    before = info.info("stats")["total_connections_received"]

    async def one(i: int) -> None:
        # Each task is its own context, as each request and each socket handshake is under ASGI.
        cache_object = caches.create_connection("default") if backend == "ours" else RedisCache(REDIS_URL, {})
        await sync_to_async(cache_object.get, thread_sensitive=False)(f"probe-{i}")

    async def all_of_them() -> None:
        await asyncio.gather(*(one(i) for i in range(contexts)))

    asyncio.run(all_of_them())
    return info.info("stats")["total_connections_received"] - before


@needs_redis
def test_many_contexts_use_a_few_redis_connections_not_one_each(settings):
    assert settings.CACHES["default"]["BACKEND"] == "social.cache.SharedRedisCache"
    assert _connections_opened("stock", 30) >= 30
    # The executor's threads may each take one connection from the shared pool.
    assert _connections_opened("ours", 30) <= 8


@pytest.fixture
def cached_sessions(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    return settings


@pytest.mark.django_db
def test_a_handshake_reads_the_session_through_the_cache_but_the_recheck_reads_the_record(
    cached_sessions, make_user
):
    alice = make_user("alice")
    store = CachedSessionStore()
    store.update(
        {
            SESSION_KEY: str(alice.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: alice.get_session_auth_hash(),
        }
    )
    store.create()
    assert user_for_session(store.session_key)[0] == alice
    # A row deleted behind the store's back (as a bulk delete does) leaves a cached copy ...
    Session.objects.filter(session_key=store.session_key).delete()
    assert user_for_session(store.session_key)[0] == alice
    # ... which the re-check of open sockets does not trust.
    assert not session_still_valid(store.session_key, alice.pk)


@pytest.mark.django_db(transaction=True)
def test_ending_sessions_drops_their_cached_copies(cached_sessions, make_user):
    from social.services import sessions_end_all

    alice = make_user("alice")
    store = CachedSessionStore()
    store.update({SESSION_KEY: str(alice.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
    store.create()
    store.update({HASH_SESSION_KEY: alice.get_session_auth_hash()})
    store.save()
    assert user_for_session(store.session_key)[0] == alice
    assert sessions_end_all(users=[alice]) == 1
    assert not user_for_session(store.session_key)[0].is_authenticated
