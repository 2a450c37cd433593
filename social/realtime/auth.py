"""Who a socket belongs to, and is the session it was opened with still good?

``auth_middleware_stack`` gives a socket what Channels' ``AuthMiddlewareStack``
gives it (``scope["user"]``, and here the session's key), with the session and
user lookup on the pool of database threads. Channels runs it on the one
thread that every ``thread_sensitive`` call shares, so when every open tab
reconnects at once (a server restart) each connect queued behind all the others.

The session is checked at connect only. Sockets re-check with
``session_still_valid`` on every heartbeat and whenever a ``session.check``
event says the user's sessions may have changed (logout, password change,
deactivation, an admin ending sessions).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.utils.crypto import constant_time_compare

from social.realtime.admission import HandshakeAdmission


def session_still_valid(session_key: str | None, user_id: int) -> bool:
    """True while the session exists, belongs to the user, matches their password and they are active."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user_id) or not data.get(BACKEND_SESSION_KEY):
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


# The scope key holding the key of the session the socket was opened with (None: anonymous).
SESSION_KEY_SCOPE = "session_key"


def session_cookie(scope: dict[str, Any]) -> str | None:
    """The session key the handshake's Cookie header carries, as Channels' ``CookieMiddleware`` reads it."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return parse_cookie(value.decode("latin1")).get(settings.SESSION_COOKIE_NAME) or None
    return None


def user_for_session(session_key: str | None) -> tuple[Any, str | None]:
    """The session's user and key, checked as Channels' ``get_user`` checks them; anonymous and None
    for a missing, unknown or outdated session (a session whose password hash is outdated is flushed)."""
    if not session_key:
        return AnonymousUser(), None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user.func({"session": store})
    if not user.is_authenticated:
        return user, None
    return user, store.session_key


class SessionUserMiddleware:
    """``scope["user"]`` and ``scope["session_key"]`` from the session cookie, loaded at once.

    What Channels' Cookie, Session and Auth middlewares do for a socket, in one
    layer: each of those copies the scope and keeps objects for the socket's
    whole life (a session store, a lazy user, a wrapped ``send``), which adds
    up with thousands of idle sockets. Sockets never write their session, so
    the key and the user are all they keep. The lookup is one call on the
    pool of database threads (see the module docstring).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user, session_key = await database_sync_to_async(user_for_session, thread_sensitive=False)(
            session_cookie(scope)
        )
        return await self.inner({**scope, "user": user, SESSION_KEY_SCOPE: session_key}, receive, send)


def auth_middleware_stack(inner: Any) -> Any:
    """``scope["user"]`` and ``scope["session_key"]`` from the session cookie (``SessionUserMiddleware``),
    once the handshake is admitted (``social.realtime.admission``), so that a reconnect storm's
    waiting handshakes cost no lookups."""
    return HandshakeAdmission(SessionUserMiddleware(inner))
