"""The wire format: frame types, limits, parsing and serialising.

Everything that crosses the socket is built or parsed here (see
docs/protocol.md). This module has no database access,
so it is tested on plain values. No ``from __future__ import annotations``:
Python 3.11 reads ``NotRequired`` of a TypedDict only from evaluated annotations.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

import emoji
from django.conf import settings

from social import bounds

# Client -> server frame types the consumers accept (per consumer subsets).
CLIENT_MESSAGE = "message"
CLIENT_TYPING = "typing"
CLIENT_READ = "read"
CLIENT_MARK_READ = "mark_read"
CLIENT_MARK_ALL_READ = "mark_all_read"
CLIENT_EDIT = "edit"
CLIENT_DELETE = "delete"
CLIENT_REACT = "react"

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
    # The message an edit, delete or react was about, echoed in the error frame.
    message_id: int | None = None


def encode(frame: Any) -> str:
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
    if isinstance(client_id, str) and len(client_id) <= bounds.CLIENT_ID_CHARS:
        return client_id
    return None


@dataclass(frozen=True)
class Draft:
    """A ``message`` frame as parsed: what to store."""

    body: str
    client_id: str | None = None
    # The id of the message this one answers (checked against the conversation by the service).
    reply_to: int | None = None


def echo_message_id(frame: dict[str, Any]) -> int | None:
    """The frame's message_id when it is one we may echo back (an edit, delete or react's)."""
    message_id = frame.get("message_id")
    if frame.get("type") in (CLIENT_EDIT, CLIENT_DELETE, CLIENT_REACT):
        try:
            return parse_id(message_id)
        except ProtocolError:
            return None
    return None


def parse_message(frame: dict[str, Any]) -> Draft:
    """Validate a ``message`` frame: its trimmed body, client_id and reply_to."""
    client_id = frame.get("client_id")
    if client_id is not None:
        if not isinstance(client_id, str) or not client_id:
            raise ProtocolError(INVALID, "client_id must be a non-empty string")
        if not _storable(client_id):
            raise ProtocolError(INVALID, "client_id contains characters that cannot be stored")
        if len(client_id) > bounds.CLIENT_ID_CHARS:
            raise ProtocolError(TOO_LONG, f"client_id longer than {bounds.CLIENT_ID_CHARS} characters")
    body = parse_body(frame.get("body"), client_id=client_id)
    reply_to = frame.get("reply_to")
    if reply_to is not None:
        try:
            reply_to = parse_id(reply_to, "reply_to")
        except ProtocolError as error:
            raise ProtocolError(error.code, error.message, client_id) from None
    return Draft(body=body, client_id=client_id, reply_to=reply_to)


def parse_body(body: Any, *, client_id: str | None = None, message_id: int | None = None) -> str:
    """A message body (of ``message`` or ``edit``) trimmed, 1 to MESSAGE_BODY_CHARS characters."""
    if not isinstance(body, str):
        raise ProtocolError(INVALID, "body must be a string", client_id, message_id)
    if not _storable(body):
        raise ProtocolError(INVALID, "body contains characters that cannot be stored", client_id, message_id)
    body = body.strip()
    if not body:
        raise ProtocolError(INVALID, "body is empty", client_id, message_id)
    if len(body) > bounds.MESSAGE_BODY_CHARS:
        raise ProtocolError(TOO_LONG, f"body longer than {bounds.MESSAGE_BODY_CHARS} characters", client_id, message_id)
    return body


@dataclass(frozen=True)
class Change:
    """An ``edit``, ``delete`` or ``react`` frame as parsed."""

    kind: str
    message_id: int
    body: str | None = None
    emoji: str | None = None


def parse_emoji(value: Any, message_id: int | None = None) -> str:
    """One emoji (a single grapheme cluster of at most EMOJI_BYTES bytes of UTF-8), else ``invalid``."""
    if not isinstance(value, str) or not value:
        raise ProtocolError(INVALID, "emoji must be one emoji", message_id=message_id)
    if len(value.encode("utf-8", "surrogatepass")) > bounds.EMOJI_BYTES:
        raise ProtocolError(INVALID, f"emoji longer than {bounds.EMOJI_BYTES} bytes", message_id=message_id)
    # The emoji package knows Unicode's emoji list and its sequences (skin
    # tones, ZWJ families, flags, keycaps): one of them and nothing else.
    if not emoji.is_emoji(value):
        raise ProtocolError(INVALID, "emoji must be exactly one emoji, not text", message_id=message_id)
    return value


def parse_change(frame: dict[str, Any]) -> Change:
    """Validate an ``edit``, ``delete`` or ``react`` frame."""
    kind = frame["type"]
    message_id = parse_id(frame.get("message_id"), "message_id")
    if kind == CLIENT_EDIT:
        return Change(kind, message_id, body=parse_body(frame.get("body"), message_id=message_id))
    if kind == CLIENT_REACT:
        return Change(kind, message_id, emoji=parse_emoji(frame.get("emoji"), message_id))
    return Change(kind, message_id)


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


def parse_id_list(value: Any, field: str = "ids", max_items: int = bounds.ID_LIST_ITEMS) -> list[int]:
    """A non-empty list of positive integer ids, at most ``max_items`` long."""
    if not isinstance(value, list) or not value:
        raise ProtocolError(INVALID, f"{field} must be a non-empty list of integers")
    if len(value) > max_items:
        raise ProtocolError(TOO_LONG, f"{field} has more than {max_items} items")
    return sorted({parse_id(item, field) for item in value})


# The smallest value of each cursor: ``after`` (and ``since``) 0 mean "from the
# start"; ``before`` is an exclusive bound on ids, which start at 1.
_CURSOR_MINIMUM = {"after": 0, "since": 0, "before": 1}


def parse_cursor(raw: str | None, name: str) -> int | None:
    """A cursor (``after``, ``since``, ``before``) from a query string, the same way for every
    view and socket: None when absent, else an integer from its minimum to MAX_ID."""
    if raw is None or raw == "":
        return None
    minimum = _CURSOR_MINIMUM[name]
    kind = "a positive" if minimum else "a non-negative"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not minimum <= int(raw) <= MAX_ID:
        raise ProtocolError(INVALID, f"{name} must be {kind} integer")
    return int(raw)


def parse_limit(raw: str | None, default: int = 50, maximum: int = 100) -> int:
    """A page size between 1 and ``maximum``."""
    if raw is None or raw == "":
        return default
    # The length first: int() of thousands of digits raises (a 500) before any range check.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3 or not 1 <= int(raw) <= maximum:
        raise ProtocolError(INVALID, f"limit must be an integer from 1 to {maximum}")
    return int(raw)


def timestamp(value: datetime) -> str:
    """ISO 8601 with microseconds and offset, as every frame carries it."""
    return value.isoformat(timespec="microseconds")


# Objects inside frames.


class UserObject(TypedDict):
    id: int
    username: str


class NotificationObject(TypedDict):
    id: int
    kind: str
    actor: UserObject | None
    text: str
    url: str
    created_at: str
    read: bool
    # 1.1 grouping: ids this one supersedes, its distinct actors (newest
    # first, at most NOTIFICATION_ACTORS_SHOWN) and how many events it groups.
    replaces: list[int]
    actors: list[UserObject]
    count: int


class ReactionObject(TypedDict):
    emoji: str
    count: int
    # At most REACTION_USERS_LISTED ids, the earliest reactors first.
    users: list[int]


class ReplyObject(TypedDict):
    id: int
    sender: UserObject | None
    excerpt: str
    deleted: bool


class MessageObject(TypedDict):
    id: int
    conversation: int
    sender: UserObject | None
    body: str
    created_at: str
    client_id: str | None
    version: int
    edited_at: str | None
    deleted: bool
    reactions: list[ReactionObject]
    reply_to: ReplyObject | None


class RoomObject(TypedDict):
    slug: str
    name: str
    private: bool


class ConversationEntry(TypedDict):
    """One row of ``GET /api/conversations/``."""

    id: int
    kind: str
    title: str
    url: str
    unread: int
    last_message: MessageObject | None
    # 1.1: muted conversations leave the bell's inbox total.
    muted: bool


def user_dict(user: Any) -> UserObject | None:
    """``{"id", "username"}`` for a user, or None."""
    if user is None:
        return None
    return {"id": user.pk, "username": user.username}


# A grouped notification shows this many of its actors.
NOTIFICATION_ACTORS_SHOWN = 3


def notification_dict(notification: Any) -> NotificationObject:
    """The notification object of PROTOCOL.md (``actor`` should be select_related)."""
    actor = user_dict(notification.actor) if notification.actor_id else None
    actors = notification.actors or ([actor] if actor else [])
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "actor": actor,
        "text": notification.text,
        "url": notification.url,
        "created_at": timestamp(notification.created_at),
        "read": notification.read_at is not None,
        "replaces": list(notification.replaces or []),
        "actors": [{"id": entry["id"], "username": entry["username"]} for entry in actors[:NOTIFICATION_ACTORS_SHOWN]],
        "count": notification.count or 1,
    }


def message_dict(message: Any) -> MessageObject:
    """The message object of PROTOCOL.md in its current state (``sender`` and
    ``reply_to__sender`` should be select_related)."""
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "sender": user_dict(message.sender),
        "body": "" if message.deleted else message.body,
        "created_at": timestamp(message.created_at),
        "client_id": message.client_id,
        "version": message.version,
        "edited_at": timestamp(message.edited_at) if message.edited_at else None,
        "deleted": message.deleted,
        "reactions": [] if message.deleted else message.reactions,
        "reply_to": reply_dict(message.reply_to) if message.reply_to_id else None,
    }


def reply_dict(original: Any) -> ReplyObject:
    """What a reply shows of the message it answers: its sender and the start of its current body."""
    return {
        "id": original.pk,
        "sender": user_dict(original.sender),
        "excerpt": "" if original.deleted else original.body[: bounds.REPLY_EXCERPT_CHARS],
        "deleted": original.deleted,
    }


def room_dict(room: Any) -> RoomObject:
    """The room object of a room socket's ``ready``."""
    return {"slug": room.slug, "name": room.name, "private": room.private}


def conversation_entry(
    *,
    conversation_id: int,
    kind: str,
    title: str,
    url: str,
    unread: int,
    last_message: MessageObject | None,
    muted: bool = False,
) -> ConversationEntry:
    """One conversation of the user's list (``/api/conversations/``)."""
    return {
        "id": conversation_id,
        "kind": kind,
        "title": title,
        "url": url,
        "unread": unread,
        "last_message": last_message,
        "muted": muted,
    }


# Frames: server -> client. Each is declared once here and built only by the
# function below it; SERVER_FRAMES maps every ``type`` to its shapes.


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    client_id: NotRequired[str]
    # The refused edit, delete or react's message.
    message_id: NotRequired[int]


class NotificationFrame(TypedDict):
    type: Literal["notification"]
    notification: NotificationObject
    unread: int


class UnreadFrame(TypedDict):
    type: Literal["unread"]
    unread: int


class NotificationsReadyFrame(TypedDict):
    type: Literal["ready"]
    unread: int
    inbox_unread: int


class InboxFrame(TypedDict):
    type: Literal["inbox"]
    unread: int
    conversation: int | None
    message: MessageObject | None


class MessageFrame(TypedDict):
    type: Literal["message"]
    message: MessageObject
    # Only on a sender's echo whose broadcast the channel layer refused.
    broadcast: NotRequired[bool]


class MessageUpdateFrame(TypedDict):
    type: Literal["message_update"]
    message: MessageObject


class TypingFrame(TypedDict):
    type: Literal["typing"]
    user: UserObject


class ReadFrame(TypedDict):
    type: Literal["read"]
    user: UserObject
    message_id: int


class JoinFrame(TypedDict):
    type: Literal["join"]
    user: UserObject


class LeaveFrame(TypedDict):
    type: Literal["leave"]
    user: UserObject


class DirectReadyFrame(TypedDict):
    type: Literal["ready"]
    conversation: int
    peer: UserObject
    read: dict[str, int]
    # More than RESUME_LIMIT were missed: the replay was the newest ones.
    truncated: NotRequired[bool]


class RoomReadyFrame(TypedDict):
    type: Literal["ready"]
    conversation: int
    room: RoomObject
    online: list[UserObject]
    truncated: NotRequired[bool]


def error_frame(code: str, message: str, client_id: str | None = None, message_id: int | None = None) -> ErrorFrame:
    """An error answer to a bad client frame; the socket stays open."""
    frame: ErrorFrame = {"type": "error", "code": code, "message": message}
    if client_id is not None:
        frame["client_id"] = client_id
    if message_id is not None:
        frame["message_id"] = message_id
    return frame


def notification_frame(notification: NotificationObject, unread: int) -> NotificationFrame:
    """A live notification with the recipient's new unread count."""
    return {"type": "notification", "notification": notification, "unread": unread}


def unread_frame(unread: int) -> UnreadFrame:
    """The recipient's notification unread count changed."""
    return {"type": "unread", "unread": unread}


def notifications_ready_frame(unread: int, inbox_unread: int) -> NotificationsReadyFrame:
    """End of the notification socket's resume replay."""
    return {"type": "ready", "unread": unread, "inbox_unread": inbox_unread}


def inbox_frame(unread: int, conversation_id: int | None, message: MessageObject | None) -> InboxFrame:
    """The user's direct-message unread total (and the message that raised it)."""
    return {"type": "inbox", "unread": unread, "conversation": conversation_id, "message": message}


def message_frame(message: MessageObject, *, broadcast: bool = True) -> MessageFrame:
    """A stored chat message, to every socket in the conversation (``broadcast=False``: an echo
    from the store because the channel layer refused the broadcast)."""
    frame: MessageFrame = {"type": "message", "message": message}
    if not broadcast:
        frame["broadcast"] = False
    return frame


def message_update_frame(message: MessageObject) -> MessageUpdateFrame:
    """A message was edited, deleted or its reactions changed: its whole new state."""
    return {"type": "message_update", "message": message}


def typing_frame(user: UserObject) -> TypingFrame:
    """Someone is typing (sent to the others only)."""
    return {"type": "typing", "user": user}


def read_frame(user: UserObject, message_id: int) -> ReadFrame:
    """Someone's read marker moved forward."""
    return {"type": "read", "user": user, "message_id": message_id}


def join_frame(user: UserObject) -> JoinFrame:
    """A user's first socket in a room opened."""
    return {"type": "join", "user": user}


def leave_frame(user: UserObject) -> LeaveFrame:
    """A user's last socket in a room closed."""
    return {"type": "leave", "user": user}


def direct_ready_frame(
    *, conversation_id: int, peer: UserObject, read: dict[str, int], truncated: bool = False
) -> DirectReadyFrame:
    """End of a DM socket's resume replay: the pair's read markers by username."""
    frame: DirectReadyFrame = {"type": "ready", "conversation": conversation_id, "peer": peer, "read": read}
    if truncated:
        frame["truncated"] = True
    return frame


def room_ready_frame(
    *, conversation_id: int, room: RoomObject, online: list[UserObject], truncated: bool = False
) -> RoomReadyFrame:
    """End of a room socket's resume replay: who is online."""
    frame: RoomReadyFrame = {"type": "ready", "conversation": conversation_id, "room": room, "online": online}
    if truncated:
        frame["truncated"] = True
    return frame


# Frames: client -> server (what the parse functions above accept).


class ClientMessageFrame(TypedDict):
    type: Literal["message"]
    body: str
    client_id: NotRequired[str]
    reply_to: NotRequired[int]


class ClientEditFrame(TypedDict):
    type: Literal["edit"]
    message_id: int
    body: str


class ClientDeleteFrame(TypedDict):
    type: Literal["delete"]
    message_id: int


class ClientReactFrame(TypedDict):
    type: Literal["react"]
    message_id: int
    emoji: str


class ClientTypingFrame(TypedDict):
    type: Literal["typing"]


class ClientReadFrame(TypedDict):
    type: Literal["read"]
    message_id: int


class ClientMarkReadFrame(TypedDict):
    type: Literal["mark_read"]
    ids: list[int]


class ClientMarkAllReadFrame(TypedDict):
    type: Literal["mark_all_read"]


# Every frame type by direction and socket, with its shape(s).
SERVER_FRAMES: dict[str, tuple[type, ...]] = {
    "error": (ErrorFrame,),
    "notification": (NotificationFrame,),
    "unread": (UnreadFrame,),
    "inbox": (InboxFrame,),
    "ready": (NotificationsReadyFrame, DirectReadyFrame, RoomReadyFrame),
    "message": (MessageFrame,),
    "message_update": (MessageUpdateFrame,),
    "typing": (TypingFrame,),
    "read": (ReadFrame,),
    "join": (JoinFrame,),
    "leave": (LeaveFrame,),
}
CLIENT_FRAMES: dict[str, type] = {
    CLIENT_MESSAGE: ClientMessageFrame,
    CLIENT_TYPING: ClientTypingFrame,
    CLIENT_READ: ClientReadFrame,
    CLIENT_MARK_READ: ClientMarkReadFrame,
    CLIENT_MARK_ALL_READ: ClientMarkAllReadFrame,
    CLIENT_EDIT: ClientEditFrame,
    CLIENT_DELETE: ClientDeleteFrame,
    CLIENT_REACT: ClientReactFrame,
}


# Channel-layer events (server to server; handler names are the constants above).


class RelayEvent(TypedDict):
    type: Literal["frame.relay"]
    text: str
    exclude_user: NotRequired[int]
    exclude_channel: NotRequired[str]
    sender: NotRequired[int]
    seq: NotRequired[int]
    version: NotRequired[int]
    room: NotRequired[int]
    bell: NotRequired[bool]
    presence: NotRequired[str]
    presence_version: NotRequired[int]


class SessionEndEvent(TypedDict):
    type: Literal["session.end"]
    session_key: str


class SessionCheckEvent(TypedDict):
    type: Literal["session.check"]


class AccessCheckEvent(TypedDict):
    type: Literal["access.check"]


class LayerRecoveredEvent(TypedDict):
    type: Literal["layer.recovered"]


EVENTS: dict[str, type] = {
    EVENT_RELAY: RelayEvent,
    EVENT_SESSION_END: SessionEndEvent,
    EVENT_SESSION_CHECK: SessionCheckEvent,
    EVENT_ACCESS_CHECK: AccessCheckEvent,
    EVENT_LAYER_RECOVERED: LayerRecoveredEvent,
}


def session_end_event(session_key: str) -> SessionEndEvent:
    """To a user's control group: close the sockets of this (logged-out) session."""
    return {"type": "session.end", "session_key": session_key}


def session_check_event() -> SessionCheckEvent:
    """To a user's control group: their sessions may have changed, re-check."""
    return {"type": "session.check"}


def access_check_event() -> AccessCheckEvent:
    """To a user's control group: memberships or blocks changed, re-check access."""
    return {"type": "access.check"}


def layer_recovered_event() -> LayerRecoveredEvent:
    """To every local socket: the channel layer was unreachable, resume (4012)."""
    return {"type": "layer.recovered"}


def relay_event(
    frame: Any,
    *,
    exclude_user: int | None = None,
    exclude_channel: str | None = None,
    sender: int | None = None,
    seq: int | None = None,
    version: int | None = None,
    room: int | None = None,
    bell: bool | None = None,
    presence: str | None = None,
    presence_version: int | None = None,
) -> RelayEvent:
    """A channel-layer event carrying one frame serialised once for every receiver.

    ``exclude_user`` skips that user's sockets (typing goes to the others only);
    ``exclude_channel`` skips one socket (a sender that acknowledged itself);
    ``sender`` lets a receiver drop frames from users it has blocked; ``seq`` is
    the id of the stored row the frame announces, so a socket that has just
    replayed up to some id drops the live copy of a row it already sent;
    ``version`` is the message version a ``message_update`` carries, dropped
    the same way by a socket that replayed by version; ``room`` marks an
    event of a room's group, where its members' bell sockets listen too and
    take only those marked ``bell``;
    ``presence`` (``"join"`` or ``"leave"``, of ``sender``) lets a room socket
    drop an announcement its ``ready`` snapshot already reflects, and
    ``presence_version`` one that arrives after a newer one.
    """
    event: RelayEvent = {"type": "frame.relay", "text": encode(frame)}
    routing = {
        "exclude_user": exclude_user,
        "exclude_channel": exclude_channel,
        "sender": sender,
        "seq": seq,
        "version": version,
        "room": room,
        "bell": bell,
        "presence": presence,
        "presence_version": presence_version,
    }
    event.update({key: value for key, value in routing.items() if value is not None})  # type: ignore[typeddict-item]
    return event
