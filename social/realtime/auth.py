"""Who a socket belongs to, and is the session it was opened with still good?

``auth_middleware_stack`` is Channels' ``AuthMiddlewareStack`` with the session
and user lookup on the pool of database threads. Channels runs it on the one
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

from channels.auth import AuthMiddleware, get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
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


class PooledAuthMiddleware(AuthMiddleware):
    """Channels' ``AuthMiddleware``, loading the session and user on any database thread."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        # get_user is Channels' own, wrapped for the shared thread; run its function on the pool.
        scope["user"]._wrapped = await database_sync_to_async(get_user.func, thread_sensitive=False)(scope)


def auth_middleware_stack(inner: Any) -> Any:
    """Cookies, session and ``scope["user"]``, as ``AuthMiddlewareStack`` (see the module docstring),
    once the handshake is admitted (``social.realtime.admission``), so that a reconnect storm's
    waiting handshakes cost no lookups."""
    return HandshakeAdmission(CookieMiddleware(SessionMiddleware(PooledAuthMiddleware(inner))))
