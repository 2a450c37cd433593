"""Minimal Django settings for the P1 naive app (no database, no auth, no sessions)."""

from __future__ import annotations

import os

SECRET_KEY = "bench-naive-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
ASGI_APPLICATION = "bench.naive_asgi.application"


def _channel_layers() -> dict[str, dict[str, object]]:
    """Same layer choice as the app: REDIS_URL unset = in-memory; CHANNEL_LAYER = pubsub | core."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    backend = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }[os.environ.get("CHANNEL_LAYER", "pubsub")]
    prefix = os.environ.get("CHANNEL_PREFIX", "asgi")
    # redis-py 8 defaults to socket_timeout=5 s and a 100-connection asyncio pool. The first
    # equals channels-redis' 5 s BZPOPMIN, so an idle receive() raises TimeoutError and kills
    # its consumer; the second refuses bursts of group_add/discard. Lift both so that P1
    # measures the tutorial's consumer pattern, not that incompatibility.
    host = {"address": url, "socket_timeout": None, "max_connections": 10_000}
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [host], "prefix": prefix}}}


CHANNEL_LAYERS = _channel_layers()
