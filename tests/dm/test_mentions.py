"""@mentions in DM and room messages notify the members they name, through the bell."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from dm import changes, services
from dm.models import Block
from notifications.models import Notification
from social.realtime import protocol

pytestmark = pytest.mark.django_db(transaction=True)


def mentions() -> list[tuple[str, str, str, str]]:
    return list(
        Notification.objects.filter(kind=Notification.Kind.MENTION)
        .order_by("recipient__username")
        .values_list("recipient__username", "actor__username", "url", "text")
    )


def test_a_room_message_notifies_the_members_it_names_once_each(users, room):
    services.room_join(user=users["bob"], conversation=room)
    sent = services.message_send(
        sender=users["alice"], conversation=room, body="@bob, @BOB and @carol: look (@alice too)", client_id=None
    )
    url = f"/rooms/general/#message-{sent.message.pk}"
    # carol is not a member, alice is the sender.
    assert mentions() == [("bob", "alice", url, "alice mentioned you in “General”")]


def test_a_direct_message_mention_links_to_the_senders_window(users):
    pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])
    sent = services.message_send(sender=users["alice"], conversation=pair, body="hey @bob.", client_id=None)
    assert mentions() == [
        ("bob", "alice", f"/messages/alice/#message-{sent.message.pk}", "alice mentioned you in a direct message")
    ]


def test_no_mention_reaches_someone_who_blocked_the_sender(users, room):
    services.room_join(user=users["bob"], conversation=room)
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    services.message_send(sender=users["alice"], conversation=room, body="@bob?", client_id=None)
    assert mentions() == []


def test_no_mention_reaches_someone_who_muted_the_conversation(users, room):
    services.room_join(user=users["bob"], conversation=room)
    services.room_join(user=users["carol"], conversation=room)
    services.conversation_mute_set(user=users["bob"], conversation=room, muted=True)
    services.message_send(sender=users["alice"], conversation=room, body="@bob @carol lunch?", client_id=None)
    assert [recipient for recipient, *_ in mentions()] == ["carol"]


def test_an_edit_that_adds_a_mention_does_not_notify(users, room):
    services.room_join(user=users["bob"], conversation=room)
    sent = services.message_send(sender=users["alice"], conversation=room, body="hello", client_id=None)
    changes.message_change(
        user=users["alice"], conversation=room, change=protocol.Change("edit", sent.message.pk, body="hello @bob")
    )
    assert mentions() == []


async def test_a_mention_sent_on_a_room_socket_reaches_the_named_members_bell(connect, users, room):
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    bell = await connect("bob", "/ws/notifications/")
    await bell.until_ready()
    alice = await connect("alice", "/ws/rooms/general/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "first, no mention", "client_id": "1"})
    await alice.send({"type": "message", "body": "@bob can you look?", "client_id": "2"})
    await alice.recv_type("message")
    echo = await alice.recv_type("message")
    frames = await bell.drain(0.3)
    notifications = [frame for frame in frames if frame["type"] == "notification"]
    # One notification, for the message that named bob (the bell also follows the room's messages).
    assert len(notifications) == 1
    (frame,) = notifications
    assert frame["notification"]["kind"] == "mention"
    assert frame["notification"]["url"] == f"/rooms/general/#message-{echo['message']['id']}"
    assert frame["unread"] == 1
    assert [frame["message"]["client_id"] for frame in frames if frame["type"] == "message"] == ["1", "2"]
