"""The wire format: frame types, limits, parsing and serialising.

Everything that crosses the socket is built or parsed here (see
../shared/PROTOCOL.md and docs/protocol.md). This module has no database access,
so it is tested on plain values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

# Client -> server frame types the consumers accept (per consumer subsets).
CLIENT_MESSAGE = "message"
CLIENT_TYPING = "typing"
CLIENT_READ = "read"
CLIENT_MARK_READ = "mark_read"
CLIENT_MARK_ALL_READ = "mark_all_read"

# Error codes of the error frame.
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
INVALID = "invalid"
TOO_LONG = "too_long"
RATE_LIMITED = "rate_limited"
FORBIDDEN = "forbidden"
SERVER_ERROR = "server_error"

# Close codes.
CLOSE_NOT_LOGGED_IN = 4401
# The session changed (password change, expiry, sessions ended): reconnect at
# once; the new handshake is authenticated afresh and gets 4401 if it fails.
CLOSE_REAUTHENTICATE = 4001
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_FLOODING = 4429
# Pushes may have been lost (the channel layer was unreachable): reconnect with
# back-off and resume with ``after``. (Servers may not send 1012 themselves.)
CLOSE_RESUME = 4012
# The socket did not read what it was sent (WS_MAX_BUFFERED_BYTES queued for
# it): reconnect with back-off and resume with ``after``.
CLOSE_TOO_SLOW = 4008

# Channel-layer handler names: server constants, never taken from a client.
EVENT_RELAY = "frame.relay"
EVENT_SESSION_END = "session.end"
EVENT_SESSION_CHECK = "session.check"
EVENT_ACCESS_CHECK = "access.check"
EVENT_LAYER_RECOVERED = "layer.recovered"
# Set on an event that a direct-relay layer queued because its socket declined it.
QUEUED_KEY = "queued"

# Largest integer id accepted from a client (PostgreSQL bigint).
MAX_ID = 2**63 - 1


def limits() -> dict[str, Any]:
    """The realtime limits from settings.REALTIME."""
    return settings.REALTIME


@dataclass
class ProtocolError(Exception):
    """A client frame the server refuses; answered with an error frame."""

    code: str
    message: str
    client_id: str | None = None


def encode(frame: dict[str, Any]) -> str:
    """Serialise one frame (compact JSON, UTF-8 text)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _reject_constant(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def parse_frame(text: str | None, binary: bytes | None) -> dict[str, Any]:
    """Decode a client text frame into a dict with a string ``type``."""
    if text is None:
        raise ProtocolError(BAD_FRAME, "binary frames are not supported; send JSON text")
    if len(text.encode("utf-8", "surrogatepass")) > limits()["MAX_FRAME_BYTES"]:
        raise ProtocolError(TOO_LONG, f"frame larger than {limits()['MAX_FRAME_BYTES']} bytes")
    try:
        frame = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON, "frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise ProtocolError(BAD_FRAME, "frame must be a JSON object")
    if not isinstance(frame.get("type"), str):
        raise ProtocolError(BAD_FRAME, "frame needs a string 'type'", echo_client_id(frame))
    return frame


def echo_client_id(frame: dict[str, Any]) -> str | None:
    """The frame's client_id when it is one we may echo back."""
    client_id = frame.get("client_id")
    if isinstance(client_id, str) and len(client_id) <= limits()["MAX_CLIENT_ID_CHARS"]:
        return client_id
    return None


def parse_message(frame: dict[str, Any]) -> tuple[str, str | None]:
    """Validate a ``message`` frame; return (trimmed body, client_id or None)."""
    client_id = frame.get("client_id")
    if client_id is not None:
        if not isinstance(client_id, str) or not client_id:
            raise ProtocolError(INVALID, "client_id must be a non-empty string")
        if not _storable(client_id):
            raise ProtocolError(INVALID, "client_id contains characters that cannot be stored")
        if len(client_id) > limits()["MAX_CLIENT_ID_CHARS"]:
            raise ProtocolError(TOO_LONG, f"client_id longer than {limits()['MAX_CLIENT_ID_CHARS']} characters")
    body = frame.get("body")
    if not isinstance(body, str):
        raise ProtocolError(INVALID, "body must be a string", client_id)
    if not _storable(body):
        raise ProtocolError(INVALID, "body contains characters that cannot be stored", client_id)
    body = body.strip()
    if not body:
        raise ProtocolError(INVALID, "body is empty", client_id)
    if len(body) > limits()["MAX_BODY_CHARS"]:
        raise ProtocolError(TOO_LONG, f"body longer than {limits()['MAX_BODY_CHARS']} characters", client_id)
    return body, client_id


def _storable(text: str) -> bool:
    """False for text a database column cannot hold: a NUL (PostgreSQL) or a lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_id(value: Any, field: str = "id") -> int:
    """A positive integer id (bools, floats and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise ProtocolError(INVALID, f"{field} must be a positive integer")
    return value


def parse_id_list(value: Any, field: str = "ids", max_items: int = 500) -> list[int]:
    """A non-empty list of positive integer ids, at most ``max_items`` long."""
    if not isinstance(value, list) or not value:
        raise ProtocolError(INVALID, f"{field} must be a non-empty list of integers")
    if len(value) > max_items:
        raise ProtocolError(TOO_LONG, f"{field} has more than {max_items} items")
    return sorted({parse_id(item, field) for item in value})


def parse_after(raw: str | None) -> int | None:
    """The ``after`` resume point from a query string or URL (None when absent)."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise ProtocolError(INVALID, "after must be a non-negative integer")
    value = int(raw)
    if value > MAX_ID:
        raise ProtocolError(INVALID, "after is too large")
    return value


def parse_limit(raw: str | None, default: int = 50, maximum: int = 100) -> int:
    """A page size between 1 and ``maximum``."""
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ProtocolError(INVALID, f"limit must be an integer from 1 to {maximum}")
    return int(raw)


def timestamp(value: datetime) -> str:
    """ISO 8601 with microseconds and offset, as every frame carries it."""
    return value.isoformat(timespec="microseconds")


def user_dict(user: Any) -> dict[str, Any] | None:
    """``{"id", "username"}`` for a user, or None."""
    if user is None:
        return None
    return {"id": user.pk, "username": user.username}


def notification_dict(notification: Any) -> dict[str, Any]:
    """The notification object of PROTOCOL.md (``actor`` should be select_related)."""
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "actor": user_dict(notification.actor) if notification.actor_id else None,
        "text": notification.text,
        "url": notification.url,
        "created_at": timestamp(notification.created_at),
        "read": notification.read_at is not None,
    }


def message_dict(message: Any) -> dict[str, Any]:
    """The message object of PROTOCOL.md (``sender`` should be select_related)."""
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "sender": user_dict(message.sender),
        "body": message.body,
        "created_at": timestamp(message.created_at),
        "client_id": message.client_id,
    }


# Frames: server -> client.


def error_frame(code: str, message: str, client_id: str | None = None) -> dict[str, Any]:
    """An error answer to a bad client frame; the socket stays open."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


def notification_frame(notification: dict[str, Any], unread: int) -> dict[str, Any]:
    """A live notification with the recipient's new unread count."""
    return {"type": "notification", "notification": notification, "unread": unread}


def unread_frame(unread: int) -> dict[str, Any]:
    """The recipient's notification unread count changed."""
    return {"type": "unread", "unread": unread}


def notifications_ready_frame(unread: int, inbox_unread: int) -> dict[str, Any]:
    """End of the notification socket's resume replay."""
    return {"type": "ready", "unread": unread, "inbox_unread": inbox_unread}


def inbox_frame(unread: int, conversation_id: int | None, message: dict[str, Any] | None) -> dict[str, Any]:
    """The user's direct-message unread total (and the message that raised it)."""
    return {"type": "inbox", "unread": unread, "conversation": conversation_id, "message": message}


def message_frame(message: dict[str, Any]) -> dict[str, Any]:
    """A stored chat message, to every socket in the conversation."""
    return {"type": "message", "message": message}


def typing_frame(user: dict[str, Any]) -> dict[str, Any]:
    """Someone is typing (sent to the others only)."""
    return {"type": "typing", "user": user}


def read_frame(user: dict[str, Any], message_id: int) -> dict[str, Any]:
    """Someone's read marker moved forward."""
    return {"type": "read", "user": user, "message_id": message_id}


def join_frame(user: dict[str, Any]) -> dict[str, Any]:
    """A user's first socket in a room opened."""
    return {"type": "join", "user": user}


def leave_frame(user: dict[str, Any]) -> dict[str, Any]:
    """A user's last socket in a room closed."""
    return {"type": "leave", "user": user}


def relay_event(
    frame: dict[str, Any],
    *,
    exclude_user: int | None = None,
    exclude_channel: str | None = None,
    sender: int | None = None,
    seq: int | None = None,
    presence: str | None = None,
    presence_version: int | None = None,
) -> dict[str, Any]:
    """A channel-layer event carrying one frame serialised once for every receiver.

    ``exclude_user`` skips that user's sockets (typing goes to the others only);
    ``exclude_channel`` skips one socket (a sender that acknowledged itself);
    ``sender`` lets a receiver drop frames from users it has blocked; ``seq`` is
    the id of the stored row the frame announces, so a socket that has just
    replayed up to some id drops the live copy of a row it already sent;
    ``presence`` (``"join"`` or ``"leave"``, of ``sender``) lets a room socket
    drop an announcement its ``ready`` snapshot already reflects, and
    ``presence_version`` one that arrives after a newer one.
    """
    event: dict[str, Any] = {"type": EVENT_RELAY, "text": encode(frame)}
    if exclude_user is not None:
        event["exclude_user"] = exclude_user
    if exclude_channel is not None:
        event["exclude_channel"] = exclude_channel
    if sender is not None:
        event["sender"] = sender
    if seq is not None:
        event["seq"] = seq
    if presence is not None:
        event["presence"] = presence
    if presence_version is not None:
        event["presence_version"] = presence_version
    return event
