"""The read-mark migrations backwards and forwards on the test database: no notification turns unread
going back, and the concurrent index build can be run again after it failed (PostgreSQL)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from notifications.models import Notification
from notifications.services import notifications_mark_all_read, notify
from tests.conftest import needs_postgres

pytestmark = pytest.mark.django_db(transaction=True)


def index_names() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Notification._meta.db_table)
    return {name for name, spec in constraints.items() if spec["index"]}


@pytest.fixture
def back_at_the_end():
    yield
    call_command("migrate", "notifications", verbosity=0)


def test_going_back_before_the_read_mark_keeps_what_it_marked_read(alice, back_at_the_end):
    for i in range(3):
        notify(alice, f"n{i}")
    assert notifications_mark_all_read(user_id=alice.pk).changed
    later = notify(alice, "after the mark").pk
    call_command("migrate", "notifications", "0004", verbosity=0)
    unread = set(Notification.objects.filter(read_at__isnull=True).values_list("pk", flat=True))
    assert unread == {later}
    assert "notif_unread_visible" in index_names() and "notif_unread_by_id" not in index_names()


@needs_postgres
def test_the_index_migration_runs_again_over_a_failed_concurrent_build(back_at_the_end):
    call_command("migrate", "notifications", "0005", verbosity=0)
    with connection.cursor() as cursor:
        # The right definition, so a refused UPDATE below cannot leave a wrong index behind.
        cursor.execute(
            f"CREATE INDEX notif_unread_by_id ON {Notification._meta.db_table} (recipient_id, id)"
            " WHERE read_at IS NULL AND superseded_by_id IS NULL"
        )
        # What a cancelled CREATE INDEX CONCURRENTLY leaves behind.
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'notif_unread_by_id'::regclass")
    call_command("migrate", "notifications", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " WHERE i.indexrelid = 'notif_unread_by_id'::regclass"
        )
        valid, definition = cursor.fetchone()
    assert valid and "(recipient_id, id)" in definition and "WHERE" in definition
    assert "notif_unread_visible" not in index_names()
