"""The wire schema without a database: every frame shape against the contract, every parse error code.

The expected shapes are written out here from the wire contract (the shared
PROTOCOL.md, mirrored by docs/protocol.md): names, required and optional
fields and their types. The code's TypedDicts must declare exactly those,
and every builder must produce a value of its declared shape.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from social.realtime import protocol
from social.realtime.protocol import ProtocolError

USER = {"id": int, "username": str}
MESSAGE = {
    "id": int, "conversation": int, "sender": "user", "body": str, "created_at": str, "client_id": "str?",
    # Version 1.1: messages change.
    "version": int, "edited_at": "str?", "deleted": bool, "reactions": "reactions", "reply_to": "reply?",
}
REACTION = {"emoji": str, "count": int, "users": "ids"}
REPLY = {"id": int, "sender": "user", "excerpt": str, "deleted": bool}
NOTIFICATION = {
    "id": int, "kind": str, "actor": "user?", "text": str, "url": str, "created_at": str, "read": bool,
    # Version 1.1: grouping.
    "replaces": "ids", "actors": "users", "count": int,
}

# type -> list of (required fields, optional fields), one per shape of that type.
SERVER_FRAMES = {
    "error": [({"type", "code", "message"}, {"client_id", "message_id"})],
    "notification": [({"type", "notification", "unread"}, set())],
    "unread": [({"type", "unread"}, set())],
    "inbox": [({"type", "unread", "conversation", "message"}, set())],
    "ready": [
        ({"type", "unread", "inbox_unread"}, set()),
        ({"type", "conversation", "peer", "read"}, {"truncated"}),
        ({"type", "conversation", "room", "online"}, {"truncated"}),
    ],
    "message": [({"type", "message"}, {"broadcast"})],
    "message_update": [({"type", "message"}, set())],
    "typing": [({"type", "user"}, set())],
    "read": [({"type", "user", "message_id"}, set())],
    "join": [({"type", "user"}, set())],
    "leave": [({"type", "user"}, set())],
}
CLIENT_FRAMES = {
    "message": ({"type", "body"}, {"client_id", "reply_to"}),
    "edit": ({"type", "message_id", "body"}, set()),
    "delete": ({"type", "message_id"}, set()),
    "react": ({"type", "message_id", "emoji"}, set()),
    "typing": ({"type"}, set()),
    "read": ({"type", "message_id"}, set()),
    "mark_read": ({"type", "ids"}, set()),
    "mark_all_read": ({"type"}, set()),
}
ERROR_CODES = {"bad_json", "bad_frame", "unknown_type", "invalid", "too_long", "rate_limited", "forbidden"}
CLOSE_CODES = {4401, 4403, 4404, 4429}


def conforms(value, hint) -> bool:
    """Whether ``value`` is of the (TypedDict, Literal, union, list, dict or plain) type ``hint``."""
    origin = typing.get_origin(hint)
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return False
        hints = typing.get_type_hints(hint)
        keys = set(value)
        if not hint.__required_keys__ <= keys <= hint.__required_keys__ | hint.__optional_keys__:
            return False
        return all(conforms(value[key], _strip_not_required(hints[key])) for key in keys)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arm) for arm in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(conforms(element, item) for element in value)
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        return isinstance(value, dict) and all(
            conforms(k, key_type) and conforms(v, value_type) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _strip_not_required(hint):
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.NotRequired else hint


def fields(typed_dict) -> tuple[set[str], set[str]]:
    return set(typed_dict.__required_keys__), set(typed_dict.__optional_keys__)


def test_every_server_frame_type_and_its_fields_are_the_contract():
    assert set(protocol.SERVER_FRAMES) == set(SERVER_FRAMES)
    for frame_type, shapes in protocol.SERVER_FRAMES.items():
        declared = {tuple(map(frozenset, fields(shape))) for shape in shapes}
        assert declared == {tuple(map(frozenset, shape)) for shape in SERVER_FRAMES[frame_type]}, frame_type
        assert len(declared) == len(shapes)
        for shape in shapes:
            assert typing.get_type_hints(shape)["type"] == typing.Literal[frame_type]


def test_every_client_frame_type_and_its_fields_are_the_contract():
    assert {name: fields(shape) for name, shape in protocol.CLIENT_FRAMES.items()} == CLIENT_FRAMES


@pytest.mark.parametrize(
    ("typed_dict", "expected"),
    [
        (protocol.UserObject, USER),
        (protocol.MessageObject, MESSAGE),
        (protocol.NotificationObject, NOTIFICATION),
        (protocol.ReactionObject, REACTION),
        (protocol.ReplyObject, REPLY),
    ],
)
def test_objects_have_the_contracts_fields_and_types(typed_dict, expected):
    hints = typing.get_type_hints(typed_dict)
    assert set(hints) == set(expected) == set(typed_dict.__required_keys__)
    user = {"id": 1, "username": "a"}
    reply = {"id": 100, "sender": user, "excerpt": "first", "deleted": False}
    for name, kind in expected.items():
        if kind == "user":
            assert conforms(user, hints[name])
        elif kind == "user?":
            assert conforms(None, hints[name]) and conforms(user, hints[name])
        elif kind == "str?":
            assert conforms(None, hints[name]) and conforms("x", hints[name])
        elif kind == "ids":
            assert conforms([41, 40], hints[name]) and not conforms(["41"], hints[name])
        elif kind == "reactions":
            assert conforms([{"emoji": "👍", "count": 2, "users": [7, 9]}], hints[name])
        elif kind == "reply?":
            assert conforms(None, hints[name]) and conforms(reply, hints[name])
        elif kind == "users":
            assert conforms([{"id": 1, "username": "a"}], hints[name]) and not conforms([1], hints[name])
        else:
            assert hints[name] is kind, name


def test_error_and_close_codes_of_the_contract_exist():
    codes = {value for name, value in vars(protocol).items() if name.isupper() and isinstance(value, str)}
    assert codes >= ERROR_CODES
    closes = {value for name, value in vars(protocol).items() if name.startswith("CLOSE_")}
    assert closes >= CLOSE_CODES


def test_channel_layer_events_are_declared_and_built_to_shape():
    built = {
        protocol.EVENT_SESSION_END: protocol.session_end_event("abc"),
        protocol.EVENT_SESSION_CHECK: protocol.session_check_event(),
        protocol.EVENT_ACCESS_CHECK: protocol.access_check_event(),
        protocol.EVENT_LAYER_RECOVERED: protocol.layer_recovered_event(),
        protocol.EVENT_RELAY: protocol.relay_event(protocol.unread_frame(1), exclude_user=3, seq=9, presence="join"),
    }
    assert set(built) == set(protocol.EVENTS)
    for name, event in built.items():
        assert event["type"] == name
        assert conforms(event, protocol.EVENTS[name]), name


NOW = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
ALICE = SimpleNamespace(pk=7, username="alice")
STORED = SimpleNamespace(
    pk=108,
    conversation_id=12,
    sender=ALICE,
    body="hi",
    created_at=NOW,
    client_id=None,
    version=108,
    edited_at=None,
    deleted=False,
    reactions=[],
    reply_to_id=None,
)
EDITED_REPLY = SimpleNamespace(
    **{
        **vars(STORED),
        "pk": 110,
        "version": 120,
        "edited_at": NOW,
        "reactions": [{"emoji": "👍", "count": 2, "users": [7, 9]}],
        "reply_to_id": 108,
        "reply_to": STORED,
    }
)
DELETED = SimpleNamespace(**{**vars(STORED), "pk": 111, "version": 121, "deleted": True, "body": "gone"})
NOTIFIED = SimpleNamespace(
    pk=41, kind="comment", actor_id=7, actor=ALICE, text="t", url="/posts/3/", created_at=NOW, read_at=None,
    replaces=[], actors=[], count=1,
)
GROUPED = SimpleNamespace(
    **{**vars(NOTIFIED), "pk": 45, "replaces": [44, 41], "count": 5, "text": "alice and 3 others commented"},
    # Stored snapshots, newest first; four distinct actors, three shown.
)
GROUPED.actors = [{"id": 7, "username": "alice"}, {"id": 8, "username": "bob"}, {"id": 9, "username": "carol"},
                  {"id": 10, "username": "dave"}]


def built_frames():
    user = protocol.user_dict(ALICE)
    message = protocol.message_dict(STORED)
    room = protocol.room_dict(SimpleNamespace(slug="general", name="General", private=False))
    return [
        protocol.error_frame(protocol.INVALID, "bad"),
        protocol.error_frame(protocol.INVALID, "bad", "k3j"),
        protocol.error_frame(protocol.FORBIDDEN, "not yours", message_id=108),
        protocol.notification_frame(protocol.notification_dict(NOTIFIED), 4),
        protocol.notification_frame(protocol.notification_dict(GROUPED), 4),
        protocol.unread_frame(0),
        protocol.notifications_ready_frame(3, 2),
        protocol.inbox_frame(5, 12, message),
        protocol.inbox_frame(0, None, None),
        protocol.message_frame(message),
        protocol.message_frame(message, broadcast=False),
        protocol.message_update_frame(protocol.message_dict(EDITED_REPLY)),
        protocol.message_update_frame(protocol.message_dict(DELETED)),
        protocol.typing_frame(user),
        protocol.read_frame(user, 108),
        protocol.join_frame(user),
        protocol.leave_frame(user),
        protocol.direct_ready_frame(conversation_id=12, peer=user, read={"alice": 100, "bob": 98}),
        protocol.direct_ready_frame(conversation_id=12, peer=user, read={}, truncated=True),
        protocol.room_ready_frame(conversation_id=13, room=room, online=[user]),
    ]


@pytest.mark.parametrize("frame", built_frames(), ids=lambda frame: frame["type"])
def test_every_builder_makes_a_frame_of_a_declared_shape(frame):
    assert any(conforms(frame, shape) for shape in protocol.SERVER_FRAMES[frame["type"]])
    assert protocol.encode(frame)


def test_message_and_notification_objects_carry_iso_times_with_microseconds():
    assert protocol.message_dict(STORED)["created_at"] == "2026-11-21T10:00:00.123456+00:00"
    assert protocol.message_dict(EDITED_REPLY)["edited_at"] == "2026-11-21T10:00:00.123456+00:00"
    assert protocol.notification_dict(NOTIFIED)["read"] is False


def test_a_tombstone_shows_no_body_and_no_reactions_and_a_reply_quotes_the_start_of_its_original():
    tombstone = protocol.message_dict(SimpleNamespace(**{**vars(DELETED), "reactions": [{"emoji": "👍"}]}))
    assert (tombstone["body"], tombstone["reactions"], tombstone["deleted"]) == ("", [], True)
    long_original = SimpleNamespace(**{**vars(STORED), "body": "é" * 300})
    quoted = protocol.message_dict(SimpleNamespace(**{**vars(EDITED_REPLY), "reply_to": long_original}))
    assert quoted["reply_to"] == {"id": 108, "sender": {"id": 7, "username": "alice"}, "excerpt": "é" * 140,
                                  "deleted": False}
    quoting_deleted = protocol.message_dict(SimpleNamespace(**{**vars(EDITED_REPLY), "reply_to": DELETED}))
    assert quoting_deleted["reply_to"]["excerpt"] == "" and quoting_deleted["reply_to"]["deleted"] is True


def test_a_single_notification_lists_its_actor_and_replaces_nothing():
    single = protocol.notification_dict(NOTIFIED)
    assert (single["replaces"], single["actors"], single["count"]) == ([], [{"id": 7, "username": "alice"}], 1)


def test_a_grouped_notification_shows_three_actors_newest_first_and_every_replaced_id():
    grouped = protocol.notification_dict(GROUPED)
    assert [actor["username"] for actor in grouped["actors"]] == ["alice", "bob", "carol"]
    assert grouped["replaces"] == [44, 41]
    assert grouped["count"] == 5
    assert grouped["actor"] == {"id": 7, "username": "alice"}


def raises(code, call, *args):
    with pytest.raises(ProtocolError) as error:
        call(*args)
    assert error.value.code == code
    return error.value


@pytest.mark.parametrize(
    ("text", "binary", "code"),
    [
        ("{not json", None, "bad_json"),
        ("NaN", None, "bad_json"),
        ("[1, 2]", None, "bad_frame"),
        ('{"body": "no type"}', None, "bad_frame"),
        ('{"type": 5}', None, "bad_frame"),
        (None, b"\x00", "bad_frame"),
        ('{"type": "x", "pad": "' + "a" * 40_000 + '"}', None, "too_long"),
    ],
)
def test_frame_parse_errors(text, binary, code):
    raises(code, protocol.parse_frame, text, binary)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "body": 5}, "invalid"),
        ({"type": "message", "body": "   "}, "invalid"),
        ({"type": "message", "body": "a\x00b"}, "invalid"),
        ({"type": "message", "body": "\ud800"}, "invalid"),
        ({"type": "message", "body": "x" * 4001}, "too_long"),
        ({"type": "message", "body": "hi", "client_id": ""}, "invalid"),
        ({"type": "message", "body": "hi", "client_id": 7}, "invalid"),
        ({"type": "message", "body": "hi", "client_id": "a\x00"}, "invalid"),
        ({"type": "message", "body": "hi", "client_id": "k" * 65}, "too_long"),
    ],
)
def test_message_parse_errors(frame, code):
    raises(code, protocol.parse_message, frame)


def test_a_valid_message_is_trimmed_and_keeps_its_client_id():
    draft = protocol.parse_message({"type": "message", "body": "  hi \n", "client_id": "k3j", "reply_to": 100})
    assert draft == protocol.Draft(body="hi", client_id="k3j", reply_to=100)
    assert protocol.parse_message({"type": "message", "body": "x" * 4000}).client_id is None


@pytest.mark.parametrize("reply_to", [0, -3, "100", 1.5, True, 2**63])
def test_a_reply_to_that_is_no_id_is_invalid_with_the_client_id(reply_to):
    error = raises("invalid", protocol.parse_message, {"type": "message", "body": "hi", "client_id": "k",
                                                       "reply_to": reply_to})
    assert error.client_id == "k"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "edit", "body": "x"}, "invalid"),
        ({"type": "edit", "message_id": "8", "body": "x"}, "invalid"),
        ({"type": "edit", "message_id": 8, "body": "  "}, "invalid"),
        ({"type": "edit", "message_id": 8}, "invalid"),
        ({"type": "edit", "message_id": 8, "body": "x" * 4001}, "too_long"),
        ({"type": "delete", "message_id": 0}, "invalid"),
        ({"type": "react", "message_id": 8}, "invalid"),
        ({"type": "react", "message_id": 8, "emoji": "ok"}, "invalid"),
        ({"type": "react", "message_id": 8, "emoji": "👍👍"}, "invalid"),
        ({"type": "react", "message_id": 8, "emoji": "👍 "}, "invalid"),
        ({"type": "react", "message_id": 8, "emoji": "🏴" + "\U000e0067" * 9 + "\U000e007f"}, "invalid"),
        ({"type": "react", "message_id": 8, "emoji": ""}, "invalid"),
        ({"type": "react", "message_id": 8, "emoji": 5}, "invalid"),
    ],
)
def test_change_parse_errors_echo_the_message_id(frame, code):
    error = raises(code, protocol.parse_change, frame)
    if isinstance(frame.get("message_id"), int) and frame["message_id"] > 0:
        assert error.message_id == frame["message_id"]


SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize("emoji", ["👍", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "1️⃣", "❤️", SCOTLAND])
def test_one_emoji_is_a_reaction(emoji):
    change = protocol.parse_change({"type": "react", "message_id": 8, "emoji": emoji})
    assert change == protocol.Change("react", 8, emoji=emoji)


def test_an_edit_is_trimmed_and_a_delete_needs_only_the_id():
    assert protocol.parse_change({"type": "edit", "message_id": 8, "body": " fixed "}).body == "fixed"
    assert protocol.parse_change({"type": "delete", "message_id": 8}) == protocol.Change("delete", 8)


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "3", None, 2**63])
def test_ids_must_be_positive_integers(value):
    raises("invalid", protocol.parse_id, value)


def test_id_lists():
    assert protocol.parse_id_list([3, 1, 3]) == [1, 3]
    raises("invalid", protocol.parse_id_list, [])
    raises("invalid", protocol.parse_id_list, "1,2")
    raises("too_long", protocol.parse_id_list, list(range(1, 502)))


@pytest.mark.parametrize("name", ["after", "since", "before"])
@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "٣", "9" * 20, " 1", "0x10"])
def test_cursor_errors_are_the_same_for_every_cursor(name, raw):
    assert name in raises("invalid", protocol.parse_cursor, raw, name).message


def test_cursor_values():
    assert protocol.parse_cursor(None, "after") is None
    assert protocol.parse_cursor("", "before") is None
    assert protocol.parse_cursor("0", "after") == 0
    assert protocol.parse_cursor("0", "since") == 0
    assert protocol.parse_cursor("41", "before") == 41
    # ids start at 1: nothing is before 0.
    raises("invalid", protocol.parse_cursor, "0", "before")


@pytest.mark.parametrize("raw", ["0", "101", "x", "-5", "9" * 5000])
def test_limit_errors(raw):
    raises("invalid", protocol.parse_limit, raw)
