"""Per-user limits on writes made over HTTP: posts, comments, rooms, invitations.

Counted in the Django cache, so with Redis every server process shares one
count. django-ratelimit does the counting (fixed windows, atomic increments);
it is used as a library only and not listed in INSTALLED_APPS, because its
system check refuses the local-memory cache that the single-process default
runs on (where a process-local count is exact). The limits are settings
(``WRITE_RATE_LIMITS``), each a django-ratelimit rate such as ``"20/m"``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

log = logging.getLogger(__name__)

REFUSAL = "You are doing that too often. Wait a minute and try again."


def write_allowed(request: HttpRequest, action: str) -> bool:
    """Count one ``action`` by the request's user; False once the user is over its limit.

    With the cache unreachable (Redis down) the write is allowed: a comment
    must still be stored during an outage, as the realtime limits fail open too.
    """
    rate = settings.WRITE_RATE_LIMITS[action]
    try:
        return not is_ratelimited(request, group=f"write:{action}", key="user", rate=rate, increment=True)
    except Exception:
        log.warning("write limit for %s not checked: the cache is unreachable", action, exc_info=True)
        return True
