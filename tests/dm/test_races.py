"""Real concurrent writers (threads with their own connections): the constraints and locks hold."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from dm import services
from dm.models import Conversation, Message
from notifications.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment, one thread each; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_tabs_racing_give_exactly_one_join_and_one_leave(users, settings):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEAVE_GRACE_MS": 0}
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    for round_ in range(5):
        names = [f"tab-a-{round_}", f"tab-b-{round_}"]
        joins = race(*(lambda n=name: services.presence_enter(**where, channel_name=n) for name in names))
        assert sorted(join is not None for join in joins) == [False, True]
        leaves = race(*(lambda n=name: services.presence_exit(**where, channel_name=n) for name in names))
        assert sorted(leaves) == [False, True]
        assert race(*(lambda: services.presence_leave_due(**where) for _ in names)).count(None) == 1


def test_first_messages_racing_create_one_direct_conversation(users):
    alice, bob = users["alice"], users["bob"]
    results = race(
        lambda: services.direct_conversation_get_or_create(user_a=alice, user_b=bob).pk,
        lambda: services.direct_conversation_get_or_create(user_a=bob, user_b=alice).pk,
    )
    assert results[0] == results[1]
    assert Conversation.objects.count() == 1


def test_resends_racing_store_one_message(users):
    pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])

    def resend() -> int:
        return services.message_send(sender=users["alice"], conversation=pair, body="once", client_id="k").message.pk

    first, second = race(resend, resend)
    assert first == second
    assert Message.objects.count() == 1


def test_two_tabs_accepting_one_invitation_both_get_the_membership(users):
    room = services.room_create(creator=users["alice"], name="S", slug="s", private=True)
    bob = users["bob"]
    for _ in range(3):
        services.room_invite(inviter=users["alice"], room=room, invitee=bob)
        memberships = race(*(lambda: services.room_invitation_accept(user=bob, room=room) for _ in range(2)))
        assert None not in memberships
        assert memberships[0].pk == memberships[1].pk
        services.room_remove(conversation=room, user=bob)


def test_invitations_racing_store_one_and_notify_once(users):
    room = services.room_create(creator=users["alice"], name="S", slug="s", private=True)
    outcomes = race(
        *(lambda: services.room_invite(inviter=users["alice"], room=room, invitee=users["bob"]) for _ in range(2))
    )
    assert sorted(outcomes) == sorted([services.InviteOutcome.INVITED, services.InviteOutcome.ALREADY_INVITED])
    assert Notification.objects.filter(recipient=users["bob"]).count() == 1
