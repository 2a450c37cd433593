"""The message insert's PostgreSQL statement and its portable twin give the same result.

The portable steps run on every database (SQLite in the default setup, and
PostgreSQL here too), the one-statement form on PostgreSQL only.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from dm import services, versions
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
        "reply_to": None,
    }


@pytest.mark.parametrize("insert", INSERTS)
def test_the_insert_stores_and_stamps_the_conversation(insert, users, pair):
    with transaction.atomic():
        pk, _ = insert(connection, params(pair, users["alice"], "hello"))
    stored = Message.objects.get(pk=pk)
    assert (stored.body, stored.version) == ("hello", pk)
    assert Conversation.objects.get(pk=pair.pk).last_message_at is not None


@pytest.mark.parametrize("insert", INSERTS)
def test_the_insert_refuses_a_blocked_pair_and_stores_nothing(insert, users, pair):
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    with pytest.raises(services.PostingRefused), transaction.atomic():
        insert(connection, params(pair, users["alice"], "let me in"))
    assert not Message.objects.exists()


@needs_postgres
def test_a_message_is_numbered_only_once_it_holds_the_conversation_lock(users, pair):
    """Numbers commit in order within a conversation (dm.versions): a message stored while an edit
    holds the lock is numbered after the edit's number, so a resume from the highest number
    seen can never skip a row that commits later with a lower one."""
    first = services.message_store(sender=users["alice"], conversation=pair, body="first", client_id=None)
    locked, edit_version = threading.Event(), {}

    def edit_holding_the_lock():
        with transaction.atomic():
            assert versions.lock_conversation(connection, pair.pk, poster=users["alice"].pk, peer=users["bob"].pk)
            locked.set()
            with connection.cursor() as cursor:
                for _ in range(500):
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    if cursor.fetchone()[0]:
                        break
                    cursor.execute("SELECT pg_sleep(0.01)")
            # The store is now waiting for this transaction's lock.
            edit_version.update(versions.restamp(connection, [first.message.pk]))
        connection.close()

    editor = threading.Thread(target=edit_holding_the_lock)
    editor.start()
    assert locked.wait(10)
    second = services.message_store(sender=users["bob"], conversation=pair, body="second", client_id=None)
    editor.join(10)
    assert second.message.pk > edit_version[first.message.pk] > first.message.pk
