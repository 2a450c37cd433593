"""On a seeded table, the messaging reads that run per request or per socket use an index, never a
sequential scan of the messages (PostgreSQL's plan, after ANALYZE). Figures: bench scenario 7."""

from __future__ import annotations

import pytest
from django.db import connection

from dm import selectors, services
from dm.models import Conversation, Message
from tests.support.plans import indexes_used, plans_of, seed_year, seq_scanned, unseed

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's (DATABASE_URL)"),
    pytest.mark.django_db,
]

HEAVY, ROOM, DIRECT = 1, 1, 2  # bench.yeardata's subjects
# The table that grows with the years; a user's memberships are few enough to scan in this seed.
BIG_TABLES = {"dm_message"}


@pytest.fixture(scope="module", autouse=True)
def year(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield seed_year()
        unseed()


def assert_indexed(plans, index="message_conversation_id"):
    """No sequential scan of the messages; ``index`` used (any index when None: walking the primary
    key backwards from a cursor is as good a plan for a conversation with a big share of the rows)."""
    assert plans, "no query ran"
    for sql, plan in plans:
        assert not seq_scanned(plan) & BIG_TABLES, f"sequential scan in {sql[:200]}"
    used = set().union(*(indexes_used(plan) for _, plan in plans))
    assert (index in used) if index else used, f"{index or 'no index'} used: {used}"


def test_inbox_unread_count_reads_each_conversation_from_its_marker():
    plans = plans_of(lambda: selectors.inbox_unread_count(user_id=HEAVY))
    assert_indexed(plans)


def test_conversation_list_finds_each_last_message_through_the_index():
    entries = []
    plans = plans_of(lambda: entries.extend(selectors.conversation_list(user_id=HEAVY)))
    assert len(entries) == 200
    assert_indexed(plans)


def test_history_page_deep_in_the_past_is_an_index_range():
    oldest = Message.objects.filter(conversation_id=ROOM).order_by("id").values_list("id", flat=True)[100]
    page = []
    plans = plans_of(
        lambda: page.extend(selectors.messages_before(conversation_id=ROOM, before_id=oldest, limit=50)[0])
    )
    assert len(page) == 50
    assert_indexed(plans, index=None)


def test_resume_replay_is_an_index_range():
    after = Message.objects.filter(conversation_id=ROOM).order_by("-id").values_list("id", flat=True)[100]
    replay = []
    plans = plans_of(
        lambda: replay.extend(selectors.messages_after(conversation_id=ROOM, after_id=after, limit=200)[0])
    )
    assert len(replay) == 100
    assert_indexed(plans, index=None)


def test_direct_message_store_counts_the_recipients_unread_through_the_index(django_user_model):
    sender = django_user_model.objects.get(pk=HEAVY)
    conversation = Conversation.objects.get(pk=DIRECT)
    results = []
    plans = plans_of(
        lambda: results.extend(
            services.message_store_many(sender=sender, conversation=conversation, items=[("hi", None)])
        )
    )
    assert results[0].created
    assert_indexed(plans)
