"""message_store_many: one sender's batch stored in order, as message_store would store each.

Outside a transaction, as sockets call it: one statement on PostgreSQL, one
message_store per item elsewhere; both must give the same results.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError

from dm import services
from dm.models import Block, Conversation, Membership, Message
from tests.conftest import needs_postgres

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(users):
    return services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def store(users, conversation, items, name="alice"):
    return services.message_store_many(sender=users[name], conversation=conversation, items=items)


def test_a_batch_is_stored_in_order(users, pair):
    results = store(users, pair, [("one", "c1"), ("two", None), ("three", "c3")])
    assert [result.created for result in results] == [True, True, True]
    stored = list(Message.objects.order_by("pk").values_list("pk", "body", "client_id", "sender_id"))
    alice = users["alice"].pk
    assert stored == [
        (results[0].message.pk, "one", "c1", alice),
        (results[1].message.pk, "two", None, alice),
        (results[2].message.pk, "three", "c3", alice),
    ]
    assert [result.message.sender for result in results] == [users["alice"]] * 3
    pair.refresh_from_db()
    assert pair.last_message_at == Message.objects.get(pk=results[2].message.pk).created_at


def test_client_ids_already_stored_or_repeated_are_answered_from_the_store(users, pair):
    [first] = store(users, pair, [("hello", "k1")])
    results = store(users, pair, [("hello", "k1"), ("new", "k2"), ("new again", "k2"), ("plain", None)])
    assert [result.created for result in results] == [False, True, False, True]
    assert results[0].message.pk == first.message.pk
    assert results[2].message.pk == results[1].message.pk
    assert results[2].message.body == "new"
    assert Message.objects.count() == 3


def test_bodies_are_trimmed_and_checked_before_anything_is_stored(users, pair):
    assert store(users, pair, [("  padded  ", None)])[0].message.body == "padded"
    with pytest.raises(services.protocol.ProtocolError):
        store(users, pair, [("fine", None), ("   ", None)])
    assert Message.objects.count() == 1


@pytest.mark.parametrize("refusal", ["not_a_member", "blocked"])
def test_a_sender_who_may_not_post_stores_nothing(users, pair, refusal):
    if refusal == "blocked":
        Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    else:
        Membership.objects.filter(conversation=pair, user=users["alice"]).delete()
    with pytest.raises(services.PostingRefused):
        store(users, pair, [("one", None), ("two", "c2")])
    assert Message.objects.count() == 0
    assert Conversation.objects.get(pk=pair.pk).last_message_at is None


@needs_postgres
def test_each_dm_of_a_batch_carries_the_recipients_unread_total_after_it(users, pair):
    store(users, pair, [("earlier", None)])
    results = store(users, pair, [("a", None), ("b", "dup"), ("b", "dup"), ("c", None)])
    assert [result.inbox_unread for result in results] == [2, 3, None, 4]


@needs_postgres
def test_a_resend_that_cannot_be_read_back_fails_alone(users, pair):
    [first] = store(users, pair, [("hello", "k1")])
    lost = OperationalError("connection lost")
    with mock.patch("dm.services._stored", side_effect=lost):
        results = store(users, pair, [("new", "k2"), ("hello", "k1"), ("plain", None)])
    assert results[1] is lost
    assert [results[0].created, results[2].created] == [True, True]
    assert Message.objects.count() == 3
    assert first.message.pk not in (results[0].message.pk, results[2].message.pk)
