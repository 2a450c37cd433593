"""Reads of the notifications app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from notifications.models import Notification, PostMute, Preferences, ReadMark
from social.db.rows import WireUser, converted_rows, one_row

# The email kind of direct messages (the others are notification kinds).
EMAIL_DIRECT = "direct"
# email_delay_minutes runs from 0 (email off) to this.
MAX_EMAIL_DELAY_MINUTES = 1440

_NOTIFICATION, _READ_MARK = Notification._meta.db_table, ReadMark._meta.db_table
_USER = get_user_model()._meta.db_table
# The unread rule in SQL, ``unread()``'s twin: notification ``n`` is unread under its
# recipient's mark-all-read position ``{mark}`` (NULL before their first mark-all-read).
_UNREAD_SQL = "n.read_at IS NULL AND n.superseded_by_id IS NULL AND n.id > COALESCE({mark}, 0)"
# One user's badge: a range of the unread index past the mark, read once.
_UNREAD_COUNT_SQL = f"""
    SELECT COUNT(*) FROM {_NOTIFICATION} n WHERE n.recipient_id = %(reader)s
      AND {_UNREAD_SQL.format(mark=f"(SELECT up_to FROM {_READ_MARK} WHERE user_id = %(reader)s)")}
"""
# One probe of the unread index per user: as flat as the badge's own count however big
# the table grows, and whatever its statistics say. (``recipient_id = ANY(%s)`` over
# the whole table came out as a scan of every visible row, testing each against the
# list: 770 ms for 10,000 users on a fresh table.)
_UNREAD_COUNTS_POSTGRES_SQL = f"""
    SELECT r.id, (
        SELECT COUNT(*) FROM {_NOTIFICATION} n WHERE n.recipient_id = r.id AND {_UNREAD_SQL.format(mark="m.up_to")}
    ) FROM unnest(%s::{{user_id_type}}[]) AS r(id)
    LEFT JOIN {_READ_MARK} m ON m.user_id = r.id
"""
# A page of the user's visible notifications, newest first from the (recipient, id) index,
# with the actor's name and the user's mark-all-read row (see ``with_read_marks``).
_NOTIFICATION_PAGE_SQL = f"""
    SELECT n.id, n.kind, n.actor_id, actor.username, n.text, n.url, n.created_at, n.read_at,
           n.replaces, n.actors, n.count, mark.up_to, mark.marked_at
    FROM {_NOTIFICATION} n
    LEFT JOIN {_USER} actor ON actor.id = n.actor_id
    LEFT JOIN {_READ_MARK} mark ON mark.user_id = n.recipient_id
    WHERE n.recipient_id = %(reader)s AND n.superseded_by_id IS NULL {{bound}}
    ORDER BY n.id DESC LIMIT %(limit)s
"""
_NOTIFICATION_PAGE_FIELDS = {
    6: Notification._meta.get_field("created_at"),
    7: Notification._meta.get_field("read_at"),
    8: Notification._meta.get_field("replaces"),
    9: Notification._meta.get_field("actors"),
    12: ReadMark._meta.get_field("marked_at"),
}


@dataclass(slots=True)
class WireNotification:
    """A notification as ``protocol.notification_dict`` reads it, from one row."""

    pk: int
    kind: str
    actor_id: int | None
    actor: WireUser | None
    text: str
    url: str
    created_at: Any
    read_at: Any
    replaces: Any
    actors: Any
    count: int


def user_id_type(connection: Any) -> str:
    """The database type of the user model's key (``integer`` for Django's ``User``), for casting
    an array of user ids to it: psycopg sends small ids as ``smallint[]``, and PostgreSQL
    hashes an ``ANY`` list only when the types match."""
    return get_user_model()._meta.pk.db_type(connection)


def visible() -> QuerySet[Notification]:
    """Notifications not superseded by a group (the only ones lists, resumes and counts show)."""
    return Notification.objects.filter(superseded_by__isnull=True)


def unread(*, user_id: int | None = None) -> QuerySet[Notification]:
    """Visible notifications not read: no ``read_at``, and above their recipient's ``ReadMark``.

    Of one user when ``user_id`` is given, else of everybody (each row against its own recipient's mark).
    """
    recipient = OuterRef("recipient_id") if user_id is None else user_id
    mark = Subquery(ReadMark.objects.filter(user_id=recipient).values("up_to"))
    rows = visible().filter(read_at__isnull=True, id__gt=Coalesce(mark, Value(0)))
    return rows if user_id is None else rows.filter(recipient_id=user_id)


def read_mark(*, user_id: int) -> ReadMark | None:
    """The user's mark-all-read row (None before their first mark-all-read)."""
    return ReadMark.objects.filter(user_id=user_id).first()


def with_read_marks(rows: list[Notification], *, user_id: int) -> list[Notification]:
    """The rows (all the user's) with ``read_at`` filled in where the user's ``ReadMark`` covers them and
    its job has not yet: what the notifications page shows (the wire's pages do the same in their
    statement, ``_notification_page``). One query, and none when all are read."""
    if any(row.read_at is None for row in rows):
        mark = read_mark(user_id=user_id)
        for row in rows if mark is not None else ():
            if row.read_at is None and row.pk <= mark.up_to:
                row.read_at = mark.marked_at
    return rows


# What the notifications page reads (as protocol.notification_dict does): the actor's username,
# not their whole row with its password hash, and a query that is cheaper to build.
WIRE_NOTIFICATION_FIELDS = (
    "kind",
    "actor__username",
    "text",
    "url",
    "created_at",
    "read_at",
    "replaces",
    "actors",
    "count",
)


def notifications_of(*, user_id: int) -> QuerySet[Notification]:
    """Every visible notification of the user, newest first, with what the notifications page shows."""
    return (
        visible().filter(recipient_id=user_id).select_related("actor").only(*WIRE_NOTIFICATION_FIELDS).order_by("-id")
    )


def unread_count(*, user_id: int) -> int:
    """How many of the user's notifications are unread (the badge)."""
    return one_row(_UNREAD_COUNT_SQL, {"reader": user_id})[0]


def unread_counts(*, user_ids: list[int]) -> dict[int, int]:
    """Unread counts of many users in one query (on SQLite users with none are absent)."""
    connection = connections[Notification.objects.db]
    if connection.vendor == "postgresql":
        # The ids as one array parameter: a thousand separate ones cost more to
        # prepare than the query takes to run.
        with connection.cursor() as cursor:
            cursor.execute(_UNREAD_COUNTS_POSTGRES_SQL.format(user_id_type=user_id_type(connection)), [user_ids])
            return dict(cursor.fetchall())
    rows = (
        unread()
        .filter(recipient_id__in=user_ids)
        .values("recipient_id")
        .annotate(unread=Count("id"))
        .values_list("recipient_id", "unread")
    )
    return dict(rows)


def newest_id(*, user_id: int) -> int | None:
    """The id of the user's newest notification (a page's first resume point)."""
    return Notification.objects.filter(recipient_id=user_id).order_by("-id").values_list("id", flat=True).first()


def _notification_page(user_id: int, *, bound: str, limit: int, **params: Any) -> tuple[list[WireNotification], bool]:
    """Up to ``limit`` of the user's visible notifications matching ``bound`` (SQL on ``n``), newest
    first, read as the wire shows them (``with_read_marks``); and whether more matched."""
    sql = _NOTIFICATION_PAGE_SQL.format(bound=bound)
    rows = converted_rows(sql, {"reader": user_id, "limit": limit + 1, **params}, _NOTIFICATION_PAGE_FIELDS)
    page = []
    for row in rows[:limit]:
        pk, kind, actor_id, actor_name, text, url, created_at, read_at, replaces, actors, count, up_to, marked_at = row
        if read_at is None and up_to is not None and pk <= up_to:
            read_at = marked_at
        actor = WireUser(actor_id, actor_name) if actor_id is not None else None
        page.append(
            WireNotification(pk, kind, actor_id, actor, text, url, created_at, read_at, replaces, actors, count)
        )
    return page, len(rows) > limit


def notifications_after(*, user_id: int, after_id: int, limit: int) -> tuple[list[WireNotification], bool]:
    """The newest ``limit`` notifications with id > ``after_id``, oldest first; and whether more were skipped.

    The newest ones, not the oldest, so a client that was away long resumes with
    what is current; older ones stay reachable through the HTTP API.
    """
    page, truncated = _notification_page(user_id, bound="AND n.id > %(after)s", limit=limit, after=after_id)
    return page[::-1], truncated


def notifications_before(*, user_id: int, before_id: int | None, limit: int) -> tuple[list[WireNotification], bool]:
    """A page of notifications newest first, older than ``before_id`` when given; and whether more exist."""
    bound = "" if before_id is None else "AND n.id < %(before)s"
    return _notification_page(user_id, bound=bound, limit=limit, before=before_id)


def notifications_page(*, user_id: int, number: Any, per_page: int) -> Page:
    """The notifications page's page ``number`` (Django's ``get_page``: bad numbers give the first or last)."""
    page = Paginator(notifications_of(user_id=user_id), per_page).get_page(number)
    page.object_list = with_read_marks(list(page.object_list), user_id=user_id)
    return page


def email_kinds() -> tuple[str, ...]:
    """What can be emailed, each switchable in the preferences: the notification kinds and ``direct``."""
    return (*Notification.Kind.values, EMAIL_DIRECT)


def preferences_of(*, user_id: int) -> dict[str, Any]:
    """``{"email": {kind: bool}, "email_delay_minutes": int}``, the defaults for a user who never chose."""
    row = Preferences.objects.filter(user_id=user_id).first() or default_preferences(user_id)
    return {
        "email": {kind: getattr(row, f"email_{kind}") for kind in email_kinds()},
        "email_delay_minutes": row.email_delay_minutes,
    }


def default_preferences(user_id: int) -> Preferences:
    """An unsaved row with the defaults (the delay from settings.ATTENTION)."""
    return Preferences(user_id=user_id, email_delay_minutes=settings.ATTENTION["EMAIL_DELAY_MINUTES"])


def post_muted(*, post_id: int, user_id: int) -> bool:
    """True when the user muted the post."""
    return PostMute.objects.filter(post_id=post_id, user_id=user_id).exists()


def username_of(*, user_id: int) -> str:
    """The user's username ("" when there is no such user)."""
    return get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first() or ""
