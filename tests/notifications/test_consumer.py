"""/ws/notifications/ through the whole ASGI stack with WebsocketCommunicator."""

from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from dm.models import Conversation, Membership, Message
from notifications.models import Notification
from notifications.services import anotify
from social.realtime.groups import control_group
from social.realtime.protocol import EVENT_SESSION_CHECK
from tests.notifications.conftest import bell_socket, until_ready

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
    return set(Notification.objects.filter(recipient=user, read_at__isnull=True).values_list("id", flat=True))


async def test_anonymous_is_closed_with_4401():
    async with bell_socket("") as socket:
        assert await socket.receive_output(2) == {"type": "websocket.close", "code": 4401}


async def test_ready_without_replay_when_no_after(alice, alice_cookie):
    await make_notifications(alice, 2)
    async with bell_socket(alice_cookie) as socket:
        replay, ready = await until_ready(socket)
    assert replay == []
    assert ready == {"type": "ready", "unread": 2, "inbox_unread": 0}


async def test_ready_counts_unread_direct_messages(alice, bob, alice_cookie):
    @sync_to_async
    def direct_message():
        conversation = Conversation.objects.create(kind="direct", direct_key=f"{alice.pk}:{bob.pk}")
        Membership.objects.create(conversation=conversation, user=alice)
        Membership.objects.create(conversation=conversation, user=bob)
        Message.objects.create(conversation=conversation, sender=bob, body="hi")

    await direct_message()
    async with bell_socket(alice_cookie) as socket:
        _, ready = await until_ready(socket)
    assert ready["inbox_unread"] == 1


async def test_resume_replays_what_was_missed_oldest_first(alice, alice_cookie):
    ids = await make_notifications(alice, 4)
    async with bell_socket(alice_cookie, f"?after={ids[1]}") as socket:
        replay, ready = await until_ready(socket)
    assert [frame["notification"]["id"] for frame in replay] == ids[2:]
    assert {frame["type"] for frame in replay} == {"notification"} and replay[0]["unread"] == 4
    assert "truncated" not in ready


@override_settings(REALTIME={**__import__("django.conf").conf.settings.REALTIME, "RESUME_LIMIT": 2})
async def test_resume_is_capped_at_the_newest_resume_limit(alice, alice_cookie):
    ids = await make_notifications(alice, 5)
    async with bell_socket(alice_cookie, "?after=0") as socket:
        replay, ready = await until_ready(socket)
    assert [frame["notification"]["id"] for frame in replay] == ids[3:]
    assert ready["truncated"] is True


async def test_garbage_after_is_reported_then_treated_as_absent(alice, alice_cookie):
    await make_notifications(alice, 1)
    async with bell_socket(alice_cookie, "?after=abc") as socket:
        replay, _ = await until_ready(socket)
    assert [frame["code"] for frame in replay] == ["invalid"]


async def test_live_notification_reaches_every_tab(alice, alice_cookie, bob, bob_cookie):
    async with bell_socket(alice_cookie) as tab1, bell_socket(alice_cookie) as tab2, bell_socket(bob_cookie) as other:
        for socket in (tab1, tab2, other):
            await until_ready(socket)
        notification = await anotify(alice, "build finished", url="/posts/1/")
        for tab in (tab1, tab2):
            frame = await tab.receive_json_from(timeout=3)
            assert frame["type"] == "notification" and frame["unread"] == 1
            assert frame["notification"]["id"] == notification.pk
            assert frame["notification"]["text"] == "build finished"
        assert await other.receive_nothing(0.2)


async def test_mark_read_updates_every_tab(alice, alice_cookie):
    ids = await make_notifications(alice, 3)
    async with bell_socket(alice_cookie) as tab1, bell_socket(alice_cookie) as tab2:
        await until_ready(tab1)
        await until_ready(tab2)
        await tab1.send_json_to({"type": "mark_read", "ids": [ids[0], ids[1]]})
        for tab in (tab1, tab2):
            assert await tab.receive_json_from(timeout=3) == {"type": "unread", "unread": 1, "ids": ids[:2]}
        await tab2.send_json_to({"type": "mark_all_read"})
        for tab in (tab1, tab2):
            assert await tab.receive_json_from(timeout=3) == {"type": "unread", "unread": 0, "up_to": ids[2]}
        assert await tab1.receive_nothing(0.2)
    assert await unread_ids(alice) == set()


async def test_mark_read_when_nothing_changes_answers_only_this_tab(alice, alice_cookie):
    await make_notifications(alice, 1)
    async with bell_socket(alice_cookie) as tab1, bell_socket(alice_cookie) as tab2:
        await until_ready(tab1)
        await until_ready(tab2)
        await tab1.send_json_to({"type": "mark_all_read"})
        await tab1.receive_json_from(timeout=3)
        await tab2.receive_json_from(timeout=3)
        await tab1.send_json_to({"type": "mark_all_read"})
        assert await tab1.receive_json_from(timeout=3) == {"type": "unread", "unread": 0}
        assert await tab2.receive_nothing(0.2)


async def test_other_users_ids_are_ignored(alice, alice_cookie, bob):
    mine = await make_notifications(alice, 1)
    theirs = await make_notifications(bob, 1)
    async with bell_socket(alice_cookie) as socket:
        await until_ready(socket)
        await socket.send_json_to({"type": "mark_read", "ids": theirs})
        assert await socket.receive_json_from(timeout=3) == {"type": "unread", "unread": 1}
    assert await unread_ids(bob) == set(theirs)
    assert await unread_ids(alice) == set(mine)


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ({"text_data": "{not json"}, "bad_json"),
        ({"bytes_data": b"\x00\x01"}, "bad_frame"),
        ({"text_data": "[1, 2]"}, "bad_frame"),
        ({"text_data": '{"ids": [1]}'}, "bad_frame"),
        ({"text_data": '{"type": "delete_everything"}'}, "unknown_type"),
        ({"text_data": '{"type": "mark_read"}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": []}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": 5}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": ["5"]}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": [1.5]}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": [true]}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": [-1]}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": [99999999999999999999999]}'}, "invalid"),
        ({"text_data": '{"type": "mark_read", "ids": [1], "client_id": "c1"}'}, None),
    ],
)
async def test_bad_frames_get_error_frames_and_change_nothing(alice, alice_cookie, send, code):
    ids = await make_notifications(alice, 1)
    async with bell_socket(alice_cookie) as socket:
        await until_ready(socket)
        await socket.send_to(**send)
        frame = await socket.receive_json_from(timeout=3)
        if code is None:  # a valid frame naming someone else's id: a plain answer
            assert frame == {"type": "unread", "unread": 1}
        else:
            assert frame["type"] == "error" and frame["code"] == code and frame["message"]
        await socket.send_json_to({"type": "mark_read", "ids": ids})
        assert (await socket.receive_json_from(timeout=3))["unread"] == 0  # still open and working


async def test_error_frame_echoes_client_id(alice_cookie):
    async with bell_socket(alice_cookie) as socket:
        await until_ready(socket)
        await socket.send_json_to({"type": "mark_read", "ids": "x", "client_id": "k1"})
        frame = await socket.receive_json_from(timeout=3)
    assert frame["code"] == "invalid" and frame["client_id"] == "k1"


async def test_inbox_relay_events_are_forwarded(alice, alice_cookie):
    from social.realtime.groups import user_group
    from social.realtime.protocol import inbox_frame, relay_event
    from social.realtime.publish import group_send

    async with bell_socket(alice_cookie) as socket:
        await until_ready(socket)
        await group_send(user_group(alice.pk), relay_event(inbox_frame(5, 12, None)))
        assert await socket.receive_json_from(timeout=3) == {
            "type": "inbox",
            "unread": 5,
            "conversation": 12,
            "message": None,
        }


async def test_a_socket_whose_handler_failed_is_offered_no_more_relays(alice, alice_cookie):
    """Channels skips disconnect() when a handler raises; the layer must still forget the socket."""
    layer = get_channel_layer()
    before = set(layer.direct)
    with pytest.raises(RuntimeError, match="database down"):
        async with bell_socket(alice_cookie) as socket:
            await until_ready(socket)
            [channel] = set(layer.direct) - before
            failing = mock.patch(
                "social.realtime.consumers.session_still_valid", side_effect=RuntimeError("database down")
            )
            with failing:
                await layer.group_send(control_group(alice.pk), {"type": EVENT_SESSION_CHECK})
                await socket.receive_output(2)
    assert channel not in layer.direct
