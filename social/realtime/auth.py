"""Is the session a socket was opened with still good?

``AuthMiddlewareStack`` checks the session at connect only. Sockets re-check
with this on every heartbeat and whenever a ``session.check`` event says the
user's sessions may have changed (logout, password change, deactivation, an
admin ending sessions).
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare


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
