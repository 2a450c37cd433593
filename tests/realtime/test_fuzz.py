"""Thousands of generated frames at every consumer: no crash, no row from an invalid frame."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dm.models import Conversation, Membership, Message
from notifications.models import Notification
from notifications.selectors import unread
from tests.support.sockets import open_socket

pytestmark = pytest.mark.django_db(transaction=True)

END_MARKER = "fuzz-end-marker"
FRAME_TYPES = ["message", "typing", "read", "mark_read", "mark_all_read", "ready", "error", "join", "", "MESSAGE"]
EDGE_TEXT = st.sampled_from(["", " ", "\x00", "\ud800", "🙂" * 10, "‮rtl", "a" * 4001, "<img src=x onerror=alert(1)>"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=60),
    EDGE_TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(FRAME_TYPES), JSON)},
    optional={"body": JSON, "client_id": JSON, "ids": JSON, "message_id": JSON, "all": JSON},
)
RAW = st.one_of(st.text(max_size=80), st.just("{"), st.just("[]"), st.just('{"type": NaN}'), st.just("1e999"))
FRAMES = st.lists(st.one_of(FIELDS.map(json.dumps), JSON.map(json.dumps), RAW), min_size=20, max_size=40)
FUZZ_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def world(make_user, cookie_for, settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_PER_SECOND": 10_000,
        "RATE_BURST": 10_000,
        "USER_RATE_PER_SECOND": 10_000,
        "TYPING_INTERVAL_SECONDS": 0,
    }
    alice, bob = make_user("alice"), make_user("bob")
    room = Conversation.objects.create(kind="room", slug="fuzz", name="Fuzz")
    Membership.objects.create(conversation=room, user=alice)
    theirs = Notification.objects.create(recipient=bob, text="bob's own")
    return {"alice": alice, "bob": bob, "cookie": cookie_for(alice), "bobs_notification": theirs.pk}


async def throw(path, cookie, frames):
    """Send every frame; return (frames received, close code or None)."""
    socket = await open_socket(path, cookie=cookie)
    received, closed = [], None
    for frame in frames:
        await socket.send(frame)  # an empty text frame is a frame too
    # Frames are handled in order, so the answer to this marker comes last.
    await socket.send({"type": END_MARKER})
    while True:
        output = await socket.output(10)
        if output["type"] == "websocket.close":
            closed = output.get("code")
            break
        received.append(json.loads(output["text"]))
        if END_MARKER in received[-1].get("message", "") and received[-1].get("code") == "unknown_type":
            break
    await socket.close()
    return received, closed


def check(received, closed):
    assert closed is None, f"socket closed with {closed}"
    assert received[-1]["code"] == "unknown_type", "the socket stopped answering"
    assert not [frame for frame in received if frame.get("code") == "server_error"]


@pytest.mark.parametrize("path", ["/ws/dm/bob/", "/ws/rooms/fuzz/"])
def test_chat_sockets_survive_fuzz_and_store_only_acknowledged_messages(world, path):
    def stored_ids():
        return set(Message.objects.filter(sender=world["alice"]).values_list("id", flat=True))

    @FUZZ_SETTINGS
    @given(frames=FRAMES)
    def run(frames):
        before = stored_ids()
        received, closed = async_to_sync(throw)(path, world["cookie"], frames)
        check(received, closed)
        echoed = {frame["message"]["id"] for frame in received if frame["type"] == "message"}
        after = stored_ids()
        assert after - before <= echoed, "a row was written without an acknowledgement"
        assert echoed <= after, "an acknowledged message is not stored"

    run()


def test_notification_socket_survives_fuzz_and_touches_nobody_elses_rows(world):
    @FUZZ_SETTINGS
    @given(frames=FRAMES)
    def run(frames):
        received, closed = async_to_sync(throw)("/ws/notifications/", world["cookie"], frames)
        check(received, closed)
        assert unread().filter(pk=world["bobs_notification"]).exists()
        assert Notification.objects.count() == 1

    run()


async def test_fuzz_helpers_detect_a_crash():
    """The harness must be able to fail: a 1011 close is reported."""
    with pytest.raises(AssertionError):
        check([{"type": "error", "code": "bad_json", "message": "x"}], 1011)
    assert await sync_to_async(Message.objects.count)() == 0
