"""One Redis client per process for Django's cache (social.cache)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from social import cache
from tests.conftest import REDIS_URL, needs_redis

THREADS = 4


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


def _connections_made(backend: str, contexts: int) -> int:
    """Redis connections the cache objects of ``contexts`` tasks made, one cache read each."""
    objects = []

    async def one(i: int) -> None:
        # Each task is its own context, as each request and each socket handshake is under ASGI.
        cache_object = caches.create_connection("default") if backend == "ours" else RedisCache(REDIS_URL, {})
        objects.append(cache_object)
        await sync_to_async(cache_object.get, thread_sensitive=False)(f"probe-{i}")

    async def all_of_them() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(THREADS))
        await asyncio.gather(*(one(i) for i in range(contexts)))

    asyncio.run(all_of_them())
    pools = {id(pool): pool for o in objects for pool in o._cache._pools.values()}
    return sum(pool._created_connections for pool in pools.values())


@needs_redis
def test_many_contexts_share_a_few_redis_connections_not_one_each(settings):
    assert settings.CACHES["default"]["BACKEND"] == "social.cache.SharedRedisCache"
    assert _connections_made("stock", 30) == 30
    # At most one per thread of the pool the reads ran on.
    assert _connections_made("ours", 30) <= THREADS


def test_the_end_of_a_request_leaves_the_shared_client_connected():
    shared = cache.SharedRedisCache("redis://127.0.0.1:6379/9", {})
    client = shared._cache
    shared.close()
    assert cache.SharedRedisCache("redis://127.0.0.1:6379/9", {})._cache is client
