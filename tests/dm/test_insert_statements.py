"""The message insert's PostgreSQL statement and its portable twin give the same result.

The portable steps run on every database (SQLite in the default setup, and
PostgreSQL here too), the one-statement form on PostgreSQL only.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from dm import services
from dm.models import Block, Conversation, Message
from tests.conftest import needs_postgres

pytestmark = pytest.mark.django_db(transaction=True)

INSERTS = [pytest.param(services._insert_message_portable, id="portable")]
INSERTS.append(pytest.param(services._insert_message_postgres, id="postgres", marks=needs_postgres))


@pytest.fixture
def pair(users):
    return services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def params(pair, sender, body):
    return {
        **services._poster_params(pair, sender),
        "body": body,
        "created_at": connection.ops.adapt_datetimefield_value(timezone.now()),
        "client_id": None,
    }


@pytest.mark.parametrize("insert", INSERTS)
def test_the_insert_stores_and_stamps_the_conversation(insert, users, pair):
    with transaction.atomic():
        pk, _ = insert(connection, params(pair, users["alice"], "hello"))
    assert Message.objects.get(pk=pk).body == "hello"
    assert Conversation.objects.get(pk=pair.pk).last_message_at is not None


@pytest.mark.parametrize("insert", INSERTS)
def test_the_insert_refuses_a_blocked_pair_and_stores_nothing(insert, users, pair):
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    with pytest.raises(services.PostingRefused), transaction.atomic():
        insert(connection, params(pair, users["alice"], "let me in"))
    assert not Message.objects.exists()
