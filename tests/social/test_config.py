"""Settings come from the environment."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from social.config import cache_config, channel_layers_config, database_config, env_bool, env_list

BASE = Path("/srv/app")


def test_sqlite_file_by_default():
    config = database_config({}, BASE)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/srv/app/db.sqlite3"


def test_postgres_when_database_url_is_set():
    config = database_config({"DATABASE_URL": "postgres://bob:secret@db.internal:6543/social"}, BASE)
    assert config["ENGINE"] == "social.db.postgresql"
    # Pooled, not kept per thread (Django refuses both at once).
    assert (config["CONN_MAX_AGE"], config["OPTIONS"]["pool"]["max_size"]) == (0, 20)
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db.internal", 6543, "social", "bob")


def test_postgres_binds_parameters_on_the_server_unless_turned_off():
    url = {"DATABASE_URL": "postgres://db.internal/social"}
    assert database_config(url, BASE)["OPTIONS"]["server_side_binding"] is True
    off = database_config({**url, "DATABASE_SERVER_SIDE_BINDING": "0"}, BASE)
    assert "server_side_binding" not in off.get("OPTIONS", {})


def test_in_memory_layer_and_local_cache_by_default():
    assert channel_layers_config({})["default"]["BACKEND"] == "social.realtime.layers.RelayingInMemoryChannelLayer"
    assert cache_config({})["default"]["BACKEND"].endswith("LocMemCache")


def test_redis_pubsub_layer_and_cache_when_redis_url_is_set():
    env = {"REDIS_URL": "redis://cache.internal:6379/2"}
    layer = channel_layers_config(env)["default"]
    assert layer["BACKEND"] == "social.realtime.layers.ResilientRedisPubSubChannelLayer"
    assert layer["CONFIG"]["hosts"][0]["address"] == "redis://cache.internal:6379/2"
    assert cache_config(env)["default"]["BACKEND"] == "social.cache.SharedRedisCache"


def test_list_based_redis_layer_is_a_setting():
    layer = channel_layers_config({"REDIS_URL": "redis://x:6379/0", "CHANNEL_LAYER": "core"})["default"]
    assert layer["BACKEND"] == "social.realtime.layers.ResilientRedisChannelLayer"
    assert layer["CONFIG"]["hosts"][0]["socket_timeout"] > 5  # longer than channels-redis's blocking pop
    # group membership must outlive the longest socket daphne allows (86400 s)
    assert layer["CONFIG"]["group_expiry"] > 86400


def test_unknown_layer_kind_is_refused():
    with pytest.raises(ImproperlyConfigured, match="CHANNEL_LAYER"):
        channel_layers_config({"REDIS_URL": "redis://x:6379/0", "CHANNEL_LAYER": "kafka"})


def test_flags_and_lists():
    assert env_bool({"DEBUG": "True"}, "DEBUG") is True
    assert env_bool({"DEBUG": "0"}, "DEBUG") is False
    assert env_bool({}, "DEBUG", default=True) is True
    assert env_list({"ALLOWED_HOSTS": "a.example, b.example,"}, "ALLOWED_HOSTS", []) == ["a.example", "b.example"]


def test_running_settings_follow_the_environment(settings):
    import os

    if os.environ.get("REDIS_URL"):
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] in {
            "social.realtime.layers.ResilientRedisChannelLayer",
            "social.realtime.layers.ResilientRedisPubSubChannelLayer",
        }
    else:
        assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "social.realtime.layers.RelayingInMemoryChannelLayer"
    expected_engine = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite3"
    assert settings.DATABASES["default"]["ENGINE"].endswith(expected_engine)


def test_postgres_sessions_run_without_jit_unless_turned_on():
    url = {"DATABASE_URL": "postgres://db.internal/social"}
    assert database_config(url, BASE)["OPTIONS"]["options"] == "-c jit=off"
    assert "options" not in database_config({**url, "DATABASE_JIT": "1"}, BASE)["OPTIONS"]
