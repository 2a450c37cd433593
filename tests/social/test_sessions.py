"""The session engine (social.sessions): the stock database engine's sessions, loaded by one statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as StockSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from social.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_service_uses_the_engine():
    assert settings.SESSION_ENGINE == "social.sessions"


def test_a_session_saved_by_the_stock_engine_loads_the_same():
    stock = StockSessionStore()
    stock.update({"_auth_user_id": "7", "cart": [1, 2], "when": "2026-12-04"})
    stock.save()
    assert SessionStore(stock.session_key).load() == StockSessionStore(stock.session_key).load()
    assert SessionStore(stock.session_key).load()["cart"] == [1, 2]


def test_an_expired_session_loads_empty_and_its_key_is_not_reused():
    store = SessionStore()
    store["_auth_user_id"] = "7"
    store.save()
    key = store.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    stale = SessionStore(key)
    assert stale.load() == {}
    assert stale.session_key is None
    stale["next"] = "x"
    stale.save()
    assert stale.session_key != key


def test_an_unknown_key_loads_empty():
    store = SessionStore("x" * 32)
    assert store.load() == {}
    assert store.session_key is None


def test_a_logged_in_client_keeps_its_session(client, django_user_model):
    django_user_model.objects.create_user("sam", password="pw-123456789")
    assert client.login(username="sam", password="pw-123456789")
    response = client.get("/api/notifications/", secure=True)
    assert response.status_code == 200
