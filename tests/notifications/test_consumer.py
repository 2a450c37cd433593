"""/ws/notifications/ through the whole ASGI stack, with in-process sockets (tests/support/sockets.py)."""

from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from dm import services
from notifications.models import Notification
from notifications.selectors import unread
from notifications.services import anotify
from social.realtime.groups import control_group
from social.realtime.protocol import EVENT_SESSION_CHECK

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_cookie(alice, cookie_for):
    return cookie_for(alice)


@pytest.fixture
def bob_cookie(bob, cookie_for):
    return cookie_for(bob)


@sync_to_async
def make_notifications(user, count):
    return [Notification.objects.create(recipient=user, text=f"n{i}").pk for i in range(count)]


@sync_to_async
def unread_ids(user):
    return set(unread(user_id=user.pk).values_list("id", flat=True))


async def test_anonymous_is_closed_with_4401(bell):
    socket = await bell("")
    assert await socket.output(2) == {"type": "websocket.close", "code": 4401}


async def test_ready_without_replay_when_no_after(alice, alice_cookie, bell):
    await make_notifications(alice, 2)
    socket = await bell(alice_cookie)
    replay, ready = await socket.until_ready()
    assert replay == []
    assert ready == {"type": "ready", "unread": 2, "inbox_unread": 0}


async def test_ready_counts_unread_direct_messages(alice, bob, alice_cookie, bell):
    @sync_to_async
    def direct_message():
        conversation = services.direct_conversation_get_or_create(user_a=alice, user_b=bob)
        services.message_send(sender=bob, conversation=conversation, body="hi", client_id=None)

    await direct_message()
    socket = await bell(alice_cookie)
    _, ready = await socket.until_ready()
    assert ready["inbox_unread"] == 1


async def test_resume_replays_what_was_missed_oldest_first(alice, alice_cookie, bell):
    ids = await make_notifications(alice, 4)
    socket = await bell(alice_cookie, f"?after={ids[1]}")
    replay, ready = await socket.until_ready()
    assert [frame["notification"]["id"] for frame in replay] == ids[2:]
    assert {frame["type"] for frame in replay} == {"notification"} and replay[0]["unread"] == 4
    assert "truncated" not in ready


@override_settings(REALTIME={**__import__("django.conf").conf.settings.REALTIME, "RESUME_LIMIT": 2})
async def test_resume_is_capped_at_the_newest_resume_limit(alice, alice_cookie, bell):
    ids = await make_notifications(alice, 5)
    socket = await bell(alice_cookie, "?after=0")
    replay, ready = await socket.until_ready()
    assert [frame["notification"]["id"] for frame in replay] == ids[3:]
    assert ready["truncated"] is True


async def test_garbage_after_is_reported_then_treated_as_absent(alice, alice_cookie, bell):
    await make_notifications(alice, 1)
    socket = await bell(alice_cookie, "?after=abc")
    replay, _ = await socket.until_ready()
    assert [frame["code"] for frame in replay] == ["invalid"]


async def test_live_notification_reaches_every_tab(alice, alice_cookie, bob, bob_cookie, bell):
    tab1, tab2, other = await bell(alice_cookie), await bell(alice_cookie), await bell(bob_cookie)
    for socket in (tab1, tab2, other):
        await socket.until_ready()
    notification = await anotify(alice, "build finished", url="/posts/1/")
    for tab in (tab1, tab2):
        frame = await tab.recv()
        assert frame["type"] == "notification" and frame["unread"] == 1
        assert frame["notification"]["id"] == notification.pk
        assert frame["notification"]["text"] == "build finished"
    assert await other.silent()


async def test_mark_read_updates_every_tab(alice, alice_cookie, bell):
    ids = await make_notifications(alice, 3)
    tab1, tab2 = await bell(alice_cookie), await bell(alice_cookie)
    await tab1.until_ready()
    await tab2.until_ready()
    await tab1.send({"type": "mark_read", "ids": [ids[0], ids[1]]})
    for tab in (tab1, tab2):
        assert await tab.recv() == {"type": "unread", "unread": 1, "ids": ids[:2]}
    await tab2.send({"type": "mark_all_read"})
    for tab in (tab1, tab2):
        assert await tab.recv() == {"type": "unread", "unread": 0, "up_to": ids[2]}
    assert await tab1.silent()
    assert await unread_ids(alice) == set()


async def test_mark_read_when_nothing_changes_answers_only_this_tab(alice, alice_cookie, bell):
    await make_notifications(alice, 1)
    tab1, tab2 = await bell(alice_cookie), await bell(alice_cookie)
    await tab1.until_ready()
    await tab2.until_ready()
    await tab1.send({"type": "mark_all_read"})
    await tab1.recv()
    await tab2.recv()
    await tab1.send({"type": "mark_all_read"})
    assert await tab1.recv() == {"type": "unread", "unread": 0}
    assert await tab2.silent()


async def test_other_users_ids_are_ignored(alice, alice_cookie, bob, bell):
    mine = await make_notifications(alice, 1)
    theirs = await make_notifications(bob, 1)
    socket = await bell(alice_cookie)
    await socket.until_ready()
    await socket.send({"type": "mark_read", "ids": theirs})
    assert await socket.recv() == {"type": "unread", "unread": 1}
    assert await unread_ids(bob) == set(theirs)
    assert await unread_ids(alice) == set(mine)


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ("{not json", "bad_json"),
        (b"\x00\x01", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"ids": [1]}', "bad_frame"),
        ('{"type": "delete_everything"}', "unknown_type"),
        ('{"type": "mark_read"}', "invalid"),
        ('{"type": "mark_read", "ids": []}', "invalid"),
        ('{"type": "mark_read", "ids": 5}', "invalid"),
        ('{"type": "mark_read", "ids": ["5"]}', "invalid"),
        ('{"type": "mark_read", "ids": [1.5]}', "invalid"),
        ('{"type": "mark_read", "ids": [true]}', "invalid"),
        ('{"type": "mark_read", "ids": [-1]}', "invalid"),
        ('{"type": "mark_read", "ids": [99999999999999999999999]}', "invalid"),
        ('{"type": "mark_read", "ids": [1], "client_id": "c1"}', None),
    ],
)
async def test_bad_frames_get_error_frames_and_change_nothing(alice, alice_cookie, send, code, bell):
    ids = await make_notifications(alice, 1)
    socket = await bell(alice_cookie)
    await socket.until_ready()
    await socket.send(send)
    frame = await socket.recv()
    if code is None:  # a valid frame naming someone else's id: a plain answer
        assert frame == {"type": "unread", "unread": 1}
    else:
        assert frame["type"] == "error" and frame["code"] == code and frame["message"]
    await socket.send({"type": "mark_read", "ids": ids})
    assert (await socket.recv())["unread"] == 0  # still open and working


async def test_error_frame_echoes_client_id(alice_cookie, bell):
    socket = await bell(alice_cookie)
    await socket.until_ready()
    await socket.send({"type": "mark_read", "ids": "x", "client_id": "k1"})
    frame = await socket.recv()
    assert frame["code"] == "invalid" and frame["client_id"] == "k1"


async def test_inbox_relay_events_are_forwarded(alice, alice_cookie, bell):
    from social.realtime.groups import user_group
    from social.realtime.protocol import inbox_frame, relay_event
    from social.realtime.publish import group_send

    socket = await bell(alice_cookie)
    await socket.until_ready()
    await group_send(user_group(alice.pk), relay_event(inbox_frame(5, 12, None)))
    assert await socket.recv() == {
        "type": "inbox",
        "unread": 5,
        "conversation": 12,
        "message": None,
    }


async def test_a_socket_whose_handler_failed_is_offered_no_more_relays(alice, alice_cookie, bell):
    """Channels skips disconnect() when a handler raises; the layer must still forget the socket."""
    layer = get_channel_layer()
    before = set(layer.direct)
    with pytest.raises(RuntimeError, match="database down"):
        socket = await bell(alice_cookie)
        await socket.until_ready()
        [channel] = set(layer.direct) - before
        failing = mock.patch(
            "social.realtime.consumers.session_still_valid", side_effect=RuntimeError("database down")
        )
        with failing:
            await layer.group_send(control_group(alice.pk), {"type": EVENT_SESSION_CHECK})
            await socket.output(2)
    assert channel not in layer.direct
