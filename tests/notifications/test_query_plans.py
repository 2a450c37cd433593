"""On a seeded table, the bell's and the API's notification reads and mark-all-read use an index,
never a sequential scan (PostgreSQL's plan, after ANALYZE). Figures: bench scenario 7."""

from __future__ import annotations

import pytest
from django.db import connection

from notifications import selectors, services
from notifications.models import Notification
from tests.support.plans import indexes_used, plans_of, seed_year, seq_scanned, unseed

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's (DATABASE_URL)"),
    pytest.mark.django_db,
]

HEAVY = 1  # bench.yeardata's heavy user
# The partial indexes that hold only the unread (visible) rows, both leading with the recipient.
UNREAD_INDEXES = ("notif_unread_by_id", "notif_open_group")


@pytest.fixture(scope="module", autouse=True)
def year(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield seed_year()
        unseed()


def assert_indexed(plans, index):
    """No sequential scan of the notifications; one of ``index`` used (any index when None: walking the
    primary key backwards from a cursor is as good a plan for a user with a big share of the rows)."""
    assert plans, "no query ran"
    for sql, plan in plans:
        assert "notifications_notification" not in seq_scanned(plan), f"sequential scan in {sql[:200]}"
    used = set().union(*(indexes_used(plan) for _, plan in plans))
    assert (used & set(index)) if index else used, f"{index or 'no index'} used: {used}"


def test_unread_count_reads_only_the_unread_index(year):
    counts = []
    plans = plans_of(lambda: counts.append(selectors.unread_count(user_id=HEAVY)))
    assert counts == [year.heavy_unread]
    assert_indexed(plans, UNREAD_INDEXES)


def test_deep_page_is_an_index_range():
    deep = Notification.objects.filter(recipient_id=HEAVY).order_by("id").values_list("id", flat=True)[200]
    rows = []
    plans = plans_of(lambda: rows.extend(selectors.notifications_before(user_id=HEAVY, before_id=deep, limit=20)[0]))
    assert len(rows) == 20
    assert_indexed(plans, None)


def test_resume_replay_is_an_index_range():
    after = Notification.objects.filter(recipient_id=HEAVY).order_by("-id").values_list("id", flat=True)[100]
    rows = []
    plans = plans_of(lambda: rows.extend(selectors.notifications_after(user_id=HEAVY, after_id=after, limit=200)[0]))
    assert len(rows) == 100
    assert_indexed(plans, None)


def test_mark_all_read_finds_the_unread_through_the_unread_index(year):
    results = []
    plans = plans_of(lambda: results.append(services.notifications_mark_all_read(user_id=HEAVY)))
    assert results[0].unread == 0 and results[0].changed
    assert_indexed(plans, UNREAD_INDEXES)


def test_the_settle_job_walks_the_unread_index_under_the_mark(year):
    """The job behind mark-all-read reaches the rows under the mark through an index of only the unread,
    not through the heavy user's 100,000 rows."""
    services.notifications_mark_all_read(user_id=HEAVY)
    settled = []
    plans = plans_of(lambda: settled.append(services.notifications_settle_read(user_id=HEAVY)))
    assert settled == [year.heavy_unread]
    assert_indexed(plans, UNREAD_INDEXES)


def test_unread_counts_of_many_users_probe_the_unread_index_per_user(year):
    """notify_many's pushes carry each recipient's count: one probe each, not a pass over the table."""
    user_ids = list(range(1, 401))
    counts = {}
    plans = plans_of(lambda: counts.update(selectors.unread_counts(user_ids=user_ids)))
    assert counts[HEAVY] == year.heavy_unread
    assert sum(counts.values()) == Notification.objects.filter(read_at=None, superseded_by=None).count()
    assert_indexed(plans, UNREAD_INDEXES)
