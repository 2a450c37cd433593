"""Reads of the notifications app."""

from __future__ import annotations

from django.db import connections
from django.db.models import Count, QuerySet

from notifications.models import Notification

_UNREAD_COUNTS_POSTGRES_SQL = f"""
    SELECT recipient_id, COUNT(*) FROM {Notification._meta.db_table}
    WHERE recipient_id = ANY(%s) AND read_at IS NULL GROUP BY recipient_id
"""


def notifications_of(*, user_id: int) -> QuerySet[Notification]:
    """Every notification of the user, newest first, with the actor loaded."""
    return Notification.objects.filter(recipient_id=user_id).select_related("actor").order_by("-id")


def unread_count(*, user_id: int) -> int:
    """How many of the user's notifications are unread (the badge)."""
    return Notification.objects.filter(recipient_id=user_id, read_at__isnull=True).count()


def unread_counts(*, user_ids: list[int]) -> dict[int, int]:
    """Unread counts of many users in one query (users with none are absent)."""
    connection = connections[Notification.objects.db]
    if connection.vendor == "postgresql":
        # The ids as one array parameter: a thousand separate ones cost more to
        # prepare than the query takes to run.
        with connection.cursor() as cursor:
            cursor.execute(_UNREAD_COUNTS_POSTGRES_SQL, [user_ids])
            return dict(cursor.fetchall())
    rows = (
        Notification.objects.filter(recipient_id__in=user_ids, read_at__isnull=True)
        .values("recipient_id")
        .annotate(unread=Count("id"))
        .values_list("recipient_id", "unread")
    )
    return dict(rows)


def newest_id(*, user_id: int) -> int | None:
    """The id of the user's newest notification (a page's first resume point)."""
    return Notification.objects.filter(recipient_id=user_id).order_by("-id").values_list("id", flat=True).first()


def notifications_after(*, user_id: int, after_id: int, limit: int) -> tuple[list[Notification], bool]:
    """The newest ``limit`` notifications with id > ``after_id``, oldest first; and whether more were skipped.

    The newest ones, not the oldest, so a client that was away long resumes with
    what is current; older ones stay reachable through the HTTP API.
    """
    rows = list(notifications_of(user_id=user_id).filter(id__gt=after_id)[: limit + 1])
    truncated = len(rows) > limit
    return rows[:limit][::-1], truncated


def notifications_before(*, user_id: int, before_id: int | None, limit: int) -> tuple[list[Notification], bool]:
    """A page of notifications newest first, older than ``before_id`` when given; and whether more exist."""
    queryset = notifications_of(user_id=user_id)
    if before_id is not None:
        queryset = queryset.filter(id__lt=before_id)
    rows = list(queryset[: limit + 1])
    return rows[:limit], len(rows) > limit
