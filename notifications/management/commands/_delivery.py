"""What a command's notifications will reach, said before it sends them."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection


def where_stored() -> str:
    """The database the rows go to (vendor and name, never a password)."""
    return f"{connection.vendor} database {connection.settings_dict['NAME']}"


def delivery_note() -> tuple[bool, str]:
    """(live, sentence): whether server processes can get this process's pushes, and what the user will see."""
    if not settings.REDIS_URL:
        return False, (
            f"No REDIS_URL: this command has its own in-memory channel layer, so no server process can "
            f"deliver it live. It is stored in the {where_stored()}; the user sees it on their next page "
            f"load, or when an open tab reconnects (resume with after) -- provided the server uses this "
            f"same database (set DATABASE_URL and REDIS_URL as the server has them, e.g. in .env)."
        )
    redis = urlsplit(settings.REDIS_URL)
    return True, (
        f"Stored in the {where_stored()} and published through Redis {redis.hostname}:{redis.port or 6379}"
        f"{redis.path}: open tabs on servers with this REDIS_URL get it live; others on their next resume."
    )
