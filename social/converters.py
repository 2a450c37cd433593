"""URL path converters for the names that appear in URLs: usernames and room slugs.

Only characters those names can hold match, so a NUL byte, a control character
or anything else no user or room can be named never reaches a database lookup
(PostgreSQL refuses NUL in text and would answer 500): the URL does not
resolve, HTTP answers 404 and a WebSocket handshake reaches the not-found
consumer (close 4404). Used by both the HTTP URLconf and the WebSocket routes.
"""

from __future__ import annotations

from django.urls import register_converter


class UsernameConverter:
    """What Django's ``UnicodeUsernameValidator`` allows: letters, digits and ``@.+-_``."""

    regex = r"[\w.@+-]{1,150}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class RoomSlugConverter(UsernameConverter):
    """What a room's ``SlugField`` allows: letters, digits, ``-`` and ``_``."""

    regex = r"[-\w]{1,50}"


register_converter(UsernameConverter, "username")
register_converter(RoomSlugConverter, "roomslug")
