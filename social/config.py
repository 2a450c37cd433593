"""Turn environment variables into Django settings fragments.

Pure functions of a mapping, so tests can feed them any environment without
reloading the settings module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """Read a boolean flag: 1/true/yes/on (any case) mean True."""
    value = env.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in TRUE_WORDS


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """Read an integer, falling back to ``default`` when unset or empty."""
    value = env.get(name)
    return default if value in (None, "") else int(value)


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list, dropping blanks."""
    value = env.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def database_config(env: Mapping[str, str], base_dir: Path) -> dict[str, Any]:
    """SQLite file by default; whatever ``DATABASE_URL`` names when set."""
    url = env.get("DATABASE_URL")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(base_dir / "db.sqlite3"),
            # Several threads (and the e2e server process) write: WAL lets readers
            # carry on during a write, IMMEDIATE avoids lock-upgrade deadlocks.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    config = dj_database_url.parse(url)
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["ENGINE"] = "social.db.postgresql"
        # A pool, not persistent connections: under ASGI Django runs each HTTP
        # request on a thread of its own (ThreadSensitiveContext), and a
        # per-thread persistent connection meant a new PostgreSQL connection,
        # and server process, for every request (p50 of a small API request
        # 14-17 -> 9-10 ms here). Consumers' database hops take one and give it
        # back each time (~20 us more per hop than a kept connection).
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int(env, "DATABASE_POOL_MIN_SIZE", 2),
            "max_size": env_int(env, "DATABASE_POOL_MAX_SIZE", 20),
            # A request that waits longer than this for a connection fails; while
            # PostgreSQL is down, that is how long each one takes to fail.
            "timeout": env_int(env, "DATABASE_POOL_TIMEOUT", 5),
            # psycopg-pool retries a failed connect with a doubling back-off for up
            # to 5 minutes by default, and waits it out even once PostgreSQL is
            # back: bounded, the site recovers as soon as the database does.
            "reconnect_timeout": 10,
        }
        # Checked by the backend, only when idle (social/db/postgresql/health.py).
        config["CONN_HEALTH_CHECKS"] = False
        if env_bool(env, "DATABASE_SERVER_SIDE_BINDING", True):
            # Parameters bound by the server, so psycopg prepares a statement after
            # its fifth run and PostgreSQL stops parsing and planning the hot ones
            # (a DM's store: p99 at 200 msg/s 515 -> 214 ms in the quick bench).
            # Off behind a transaction-pooling PgBouncer older than 1.21.
            config.setdefault("OPTIONS", {})["server_side_binding"] = True
        if not env_bool(env, "DATABASE_JIT", False):
            # PostgreSQL compiles any plan costed over jit_above_cost, and a
            # per-conversation count over a user's 500 conversations is: 40 ms
            # of compiling for a 3 ms query (docs/benchmarks.md, year of data).
            # The service runs short indexed queries only. DATABASE_JIT=1 for a
            # pooler that refuses the startup option.
            config.setdefault("OPTIONS", {})["options"] = "-c jit=off"
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    return config


def channel_layers_config(env: Mapping[str, str]) -> dict[str, Any]:
    """In-memory layer by default; channels-redis when ``REDIS_URL`` is set.

    With Redis the pub/sub layer is the default: it publishes a group message
    once and fans it out inside each server process, where the list-based
    ``RedisChannelLayer`` (``CHANNEL_LAYER=core``) pushes and pops one Redis
    entry per socket; docs/benchmarks.md has the measured difference. Neither
    buffers for a socket that is gone, so nothing else changes: clients resume
    with ``?after=``.
    """
    url = env.get("REDIS_URL")
    if not url:
        return {
            "default": {
                "BACKEND": "social.realtime.layers.RelayingInMemoryChannelLayer",
                "CONFIG": {"capacity": 500, "expiry": 60},
            }
        }
    kind = env.get("CHANNEL_LAYER", "pubsub")
    if kind not in ("pubsub", "core"):
        raise ImproperlyConfigured(f"CHANNEL_LAYER must be 'pubsub' or 'core', not {kind!r}")
    if kind == "pubsub":
        return {
            "default": {
                "BACKEND": "social.realtime.layers.ResilientRedisPubSubChannelLayer",
                "CONFIG": {"hosts": [_redis_host(url)], "prefix": env.get("CHANNEL_PREFIX", "asgi")},
            }
        }
    return {
        "default": {
            "BACKEND": "social.realtime.layers.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": [_redis_host(url)],
                "prefix": env.get("CHANNEL_PREFIX", "asgi"),
                # channels-redis keeps ONE list for all sockets of a server process,
                # and the capacity applies to that list: past it group_send drops
                # silently. 500 (a per-socket-sounding number) dropped a 1,000-user
                # notify_many after the 500th push, so it is sized for a process's
                # burst; expiry still bounds Redis memory, and clients converge
                # through ?after= whatever is dropped.
                "capacity": env_int(env, "CHANNEL_CAPACITY", 50_000),
                # Undelivered events older than this are useless to a live UI.
                "expiry": 60,
                # Must exceed daphne's --websocket_timeout (default 86400 s) so a
                # long-lived socket is never silently dropped from its groups;
                # consumers also re-add themselves periodically (see base consumer).
                "group_expiry": env_int(env, "CHANNEL_GROUP_EXPIRY", 86400 * 2),
            },
        }
    }


def _redis_host(url: str) -> dict[str, Any]:
    # redis-py's default 5 s socket timeout equals channels-redis's 5 s blocking
    # pop, so an idle receive would time out (and could drop a message popped at
    # that instant); allow the pop to finish. Bursts of group_add on connect need
    # more than the default 100 pooled connections.
    return {"address": url, "socket_timeout": 15, "socket_connect_timeout": 5, "max_connections": 1000}


def cache_config(env: Mapping[str, str]) -> dict[str, Any]:
    """Local memory by default; Redis when ``REDIS_URL`` is set (shared by processes)."""
    url = env.get("REDIS_URL")
    if not url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "social"}}
    return {
        "default": {
            "BACKEND": "social.cache.SharedRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": env.get("CACHE_PREFIX", "social"),
            # An unreachable Redis fails a cache call in seconds (the write
            # limits then fail open) instead of hanging the request.
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
