"""Writes of the notifications app: notify(), marking read, and who hears about a comment.

Every write stores the row first and pushes to the recipient's group
``user_<id>`` only when the transaction commits (``send_on_commit``): a rolled
back comment notifies nobody, and a channel-layer failure is logged without
losing the row, because clients catch up with ``?after=<id>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import reduce
from operator import or_
from typing import Any, NamedTuple

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from dm.models import Block
from notifications.models import Notification, PostMute, Preferences, ReadMark
from notifications.selectors import (
    MAX_EMAIL_DELAY_MINUTES,
    default_preferences,
    email_kinds,
    newest_id,
    preferences_of,
    read_mark,
    unread,
    unread_count,
    unread_counts,
    user_id_type,
)
from social.models import Comment, Post
from social.realtime.groups import user_group
from social.realtime.protocol import (
    notification_dict,
    notification_frame,
    relay_event,
    timestamp,
    unread_frame,
    user_dict,
)
from social.realtime.publish import send_many_on_commit, send_on_commit

log = logging.getLogger(__name__)

TEXT_MAX_CHARS = Notification._meta.get_field("text").max_length
URL_MAX_CHARS = Notification._meta.get_field("url").max_length
# Mentions beyond this many in one text are ignored (a cheap guard against mass pings).
MAX_MENTIONS = 20
# "@name" not preceded by a word character or another "@" (so e-mail addresses are not mentions).
MENTION_PATTERN = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")


# Only existing users get a row; the caller compares. Formatted with the user table
# (the ids' array cast to its key's type: ``user_id_type``).
_INSERT_MANY_POSTGRES_SQL = f"""
    INSERT INTO {Notification._meta.db_table}
        (recipient_id, kind, actor_id, text, url, created_at, group_key, count, actors, replaces)
    SELECT u.{{user_id}}, %s, %s, %s, %s, %s, '', 1, %s::jsonb, '[]'::jsonb
    FROM {{users}} u WHERE u.{{user_id}} = ANY(%s::{{user_id_type}}[]) ORDER BY u.{{user_id}}
    RETURNING id, recipient_id, created_at
"""


class MarkResult(NamedTuple):
    """Outcome of marking read: the new unread count and whether anything changed."""

    unread: int
    changed: bool


def _push_notification(notification: Notification) -> None:
    payload = notification_dict(notification)
    user_id = notification.recipient_id
    # A callable, so the unread count is read after the commit and includes
    # every row the transaction wrote, not just this one.
    send_on_commit(
        user_group(user_id),
        lambda: relay_event(notification_frame(payload, unread_count(user_id=user_id)), seq=payload["id"]),
    )


def _push_unread(user_id: int, **extra: Any) -> None:
    # Counted after the commit, like _push_notification; ``extra`` tells other
    # tabs which items to grey out (``ids`` or ``up_to``).
    send_on_commit(user_group(user_id), lambda: relay_event({**unread_frame(unread_count(user_id=user_id)), **extra}))


_GROUP_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def _lock_group(recipient_id: int, group_key: str) -> None:
    # Two events for one open group committed at once (two server processes)
    # must not both find "no open group" and store two: the second waits here
    # until the first commits, then finds its row. On SQLite every transaction
    # begins IMMEDIATE (settings), which serialises writers just the same.
    connection = connections[Notification.objects.db]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_GROUP_LOCK_SQL, [f"notif:{recipient_id}:{group_key}"])


# A group keeps at most this many distinct actors and superseded ids, so a long
# unread chain (a busy post) costs bounded rows and frames, not ever-growing ones.
GROUP_ACTORS_KEPT = 50
GROUP_REPLACES_KEPT = 500


def actors_phrase(actors: list[dict[str, Any]]) -> str:
    """"bob", "bob and alice", "bob and 3 others": the distinct actors of a group, newest first."""
    names = [actor["username"] for actor in actors]
    if len(names) <= 1:
        return names[0] if names else "someone"
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    if len(names) >= GROUP_ACTORS_KEPT:
        return f"{names[0]} and more than {GROUP_ACTORS_KEPT - 2} others"
    return f"{names[0]} and {len(names) - 1} others"


@transaction.atomic
def notification_create(
    *,
    recipient_id: int,
    text: str,
    kind: str = Notification.Kind.SYSTEM,
    url: str = "",
    actor: Any = None,
    comment: Comment | None = None,
    post: Post | None = None,
    group_key: str = "",
    grouped_text: Callable[[str], str] | None = None,
) -> Notification:
    """Store one notification and push it to the recipient's sockets when the transaction commits.

    With a ``group_key``, an unread notification of the same key is superseded:
    the new row counts its events and actors, lists every id it replaces, and
    reads ``grouped_text(actors_phrase)`` ("bob and 3 others commented on …").
    """
    actor_entry = actor_snapshot(actor)
    actors = [actor_entry] if actor_entry else []
    count, replaces, superseded = 1, [], []
    if group_key:
        _lock_group(recipient_id, group_key)
        # Locked too, so a concurrent mark-read waits for the group to be stored.
        superseded = list(
            unread(user_id=recipient_id)
            .select_for_update()
            # Not one already emailed: its events were sent, and a group that
            # took them over would send them again.
            .filter(group_key=group_key, emailed_at__isnull=True)
            .order_by("-id")
        )
        for row in superseded:
            count += row.count
            replaces.extend([row.pk, *row.replaces])
            for earlier in row.actors:
                if all(earlier["id"] != known["id"] for known in actors):
                    actors.append(earlier)
        if superseded and grouped_text is not None:
            text = _clean_text(grouped_text(actors_phrase(actors)))
    notification = Notification.objects.create(
        recipient_id=recipient_id,
        kind=kind,
        text=text,
        url=url,
        actor=actor,
        comment=comment,
        post=post,
        group_key=group_key,
        count=count,
        actors=actors[:GROUP_ACTORS_KEPT],
        replaces=sorted(set(replaces), reverse=True)[:GROUP_REPLACES_KEPT],
        first_event_at=min((row.first_event_at or row.created_at for row in superseded), default=None),
    )
    if superseded:
        Notification.objects.filter(pk__in=[row.pk for row in superseded]).update(superseded_by=notification)
    _push_notification(notification)
    return notification


def actor_snapshot(user: Any) -> dict[str, Any] | None:
    """The ``{"id", "username"}`` snapshot a notification keeps of an actor."""
    return dict(user_dict(user)) if user is not None and getattr(user, "pk", None) is not None else None


def _recipient_id(recipient: Any) -> int:
    if isinstance(recipient, bool):
        raise TypeError("recipient must be a user or a user id")
    if isinstance(recipient, int):
        if not get_user_model().objects.filter(pk=recipient).exists():
            raise ValueError(f"no user with id {recipient}")
        return recipient
    if getattr(recipient, "pk", None) is None:
        raise TypeError("recipient must be a saved user or a user id")
    return recipient.pk


def _recipient_ids(recipients: Iterable[Any]) -> set[int]:
    """Ids of many recipients (that they exist is checked by the insert)."""
    ids = set()
    for recipient in recipients:
        if isinstance(recipient, bool) or not (isinstance(recipient, int) or getattr(recipient, "pk", None)):
            raise TypeError("recipients must be saved users or user ids")
        ids.add(recipient if isinstance(recipient, int) else recipient.pk)
    return ids


def _clean_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    text = " ".join(text.split())
    return text if len(text) <= TEXT_MAX_CHARS else text[: TEXT_MAX_CHARS - 1] + "…"


def clean_url(url: str | None) -> str:
    """A notification link: "" for none, else a site path or an http(s) URL (ValueError otherwise)."""
    if not url:
        return ""
    # Rendered as a link: only site paths and http(s) URLs, never javascript: and friends.
    if len(url) > URL_MAX_CHARS or not (
        (url.startswith("/") and not url.startswith("//")) or url.startswith(("https://", "http://"))
    ):
        raise ValueError("url must be a path starting with '/' or an http(s) URL")
    return url


def _notify(recipient: Any, text: str, *, url: str | None, actor: Any, kind: str) -> Notification:
    if kind not in Notification.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(Notification.Kind.values)}")
    return notification_create(
        recipient_id=_recipient_id(recipient), text=_clean_text(text), kind=kind, url=clean_url(url), actor=actor
    )


def _notify_in_worker_thread(recipient: Any, text: str, *, url: str | None, actor: Any, kind: str) -> Notification:
    try:
        return _notify(recipient, text, url=url, actor=actor, kind=kind)
    finally:
        # The worker thread's own connection would otherwise stay open forever.
        connections.close_all()


def _event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def notify(
    recipient: Any, text: str, *, url: str | None = None, actor: Any = None, kind: str = Notification.Kind.SYSTEM
) -> Notification:
    """Notify a user (object or id): store the row, push to ``user_<id>`` when the transaction commits.

    For sync code anywhere: views, admin actions, management commands, threads,
    Celery tasks, other processes (with a shared Redis channel layer). Async
    code must ``await anotify(...)`` instead; called from a running event loop
    by mistake, this still works but blocks that loop until the row is stored.
    """
    if _event_loop_running():
        log.warning("notify() called from async code; use `await anotify(...)` so the event loop is not blocked")
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(_notify_in_worker_thread, recipient, text, url=url, actor=actor, kind=kind).result()
    return _notify(recipient, text, url=url, actor=actor, kind=kind)


async def anotify(
    recipient: Any, text: str, *, url: str | None = None, actor: Any = None, kind: str = Notification.Kind.SYSTEM
) -> Notification:
    """The async twin of ``notify()``, for consumers and other coroutines."""
    return await database_sync_to_async(_notify)(recipient, text, url=url, actor=actor, kind=kind)


def _insert_many(ids: list[int], *, kind: str, text: str, url: str, actor: Any) -> list[tuple[int, int, Any]]:
    """Store one notification for each of ``ids`` that is a user: ``[(id, recipient_id, created_at)]``.

    On PostgreSQL one statement with the ids as a single array parameter: the
    ORM's ``bulk_create`` spent ~100 ms preparing 9,000 values for 1,000 rows.
    """
    connection = connections[Notification.objects.db]
    actor_entry = actor_snapshot(actor)
    actors = [actor_entry] if actor_entry else []
    if connection.vendor != "postgresql":
        users = set(get_user_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
        rows = Notification.objects.bulk_create(
            [
                Notification(recipient_id=i, kind=kind, text=text, url=url, actor=actor, actors=actors)
                for i in ids
                if i in users
            ]
        )
        return [(row.pk, row.recipient_id, row.created_at) for row in rows]
    user_meta = get_user_model()._meta
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_MANY_POSTGRES_SQL.format(
                users=user_meta.db_table, user_id=user_meta.pk.column, user_id_type=user_id_type(connection)
            ),
            [kind, actor.pk if actor is not None else None, text, url, timezone.now(), json.dumps(actors), ids],
        )
        return cursor.fetchall()


@transaction.atomic
def notify_many(
    recipients: Iterable[Any],
    text: str,
    *,
    url: str | None = None,
    actor: Any = None,
    kind: str = Notification.Kind.SYSTEM,
) -> list[int]:
    """Notify many users (objects or ids) at once: one insert, one batch of pushes on commit.

    For announcements and jobs that tell hundreds of users the same thing; the
    pushes go out as one pipelined batch instead of one event-loop hop per user.
    Returns the new notifications' ids, in recipient id order. Unknown user ids
    raise ValueError and store nothing.
    """
    if kind not in Notification.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(Notification.Kind.values)}")
    text, url = _clean_text(text), clean_url(url)
    ids = sorted(_recipient_ids(recipients))
    stored = _insert_many(ids, kind=kind, text=text, url=url, actor=actor)
    missing = set(ids).difference(recipient_id for _, recipient_id, _ in stored)
    if missing:
        raise ValueError(f"no users with ids {sorted(missing)}")
    # Every row differs from this one only in id and created_at.
    actor_entry = actor_snapshot(actor)
    actors = [actor_entry] if actor_entry else []
    template = notification_dict(
        Notification(kind=kind, actor=actor, text=text, url=url, created_at=timezone.now(), actors=actors)
    )

    def events() -> list[tuple[str, dict[str, Any]]]:
        # Counted after the commit, in one query for everybody.
        counts = unread_counts(user_ids=ids)
        return [
            (
                user_group(recipient_id),
                relay_event(
                    notification_frame(
                        {**template, "id": pk, "created_at": timestamp(created_at)}, counts.get(recipient_id, 0)
                    ),
                    seq=pk,
                ),
            )
            for pk, recipient_id, created_at in stored
        ]

    send_many_on_commit(events)
    return [pk for pk, _, _ in stored]


@transaction.atomic
def notifications_mark_read(*, user_id: int, ids: list[int]) -> MarkResult:
    """Mark the user's notifications with these ids read (other users' ids are ignored)."""
    # Locked, so a group being stored that supersedes one of them (it locks
    # them too) is either wholly before this or wholly after: a superseded row
    # is never marked read, nor announced as read, behind its group's back.
    changed = list(
        unread(user_id=user_id)
        .select_for_update()
        .filter(id__in=ids)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if changed:
        Notification.objects.filter(id__in=changed).update(read_at=timezone.now())
        _push_unread(user_id, ids=changed)
    return MarkResult(unread_count(user_id=user_id), bool(changed))


@transaction.atomic
def notifications_mark_all_read(*, user_id: int) -> MarkResult:
    """Mark every notification the user has so far read.

    One row moves however many were unread: the user's ``ReadMark`` goes up to
    their newest id (bounded by id, so a notification that arrives meanwhile
    stays unread). A job gives the rows their ``read_at`` later
    (``notifications_settle_read``); every read counts the mark already.
    """
    up_to = newest_id(user_id=user_id)
    changed = up_to is not None and unread(user_id=user_id).filter(id__lte=up_to).exists()
    if changed:
        _move_mark(user_id, up_to)
        _enqueue_settle(user_id)
        _push_unread(user_id, up_to=up_to)
    return MarkResult(unread_count(user_id=user_id), changed)


def _move_mark(user_id: int, up_to: int) -> None:
    # Never back: a concurrent mark-all-read that read an older newest id may commit last.
    _, created = ReadMark.objects.get_or_create(user_id=user_id, defaults={"up_to": up_to})
    if not created:
        ReadMark.objects.filter(user_id=user_id, up_to__lt=up_to).update(up_to=up_to, marked_at=timezone.now())


def _enqueue_settle(user_id: int) -> None:
    # Inside the transaction: with the database task backend the job row
    # commits (or rolls back) with the mark. A lost job only leaves rows
    # without read_at; the prune job settles every mark left behind.
    from notifications.tasks import settle_read

    settle_read.enqueue(user_id)


# Rows the settle job updates per transaction: short transactions, short row locks.
SETTLE_BATCH = 500


def notifications_settle_read(*, user_id: int) -> int:
    """Give the user's visible rows under their ``ReadMark`` a ``read_at`` (the mark's time), a batch per
    transaction; how many. Idempotent, and changes nothing the wire or the pages show: those rows read
    as read already (the admin's "read at" shows it)."""
    mark = read_mark(user_id=user_id)
    if mark is None:
        return 0
    settled = 0
    while True:
        with transaction.atomic():
            # Through the unread index's id range: only rows still unsettled.
            batch = list(
                Notification.objects.filter(
                    recipient_id=user_id, id__lte=mark.up_to, read_at__isnull=True, superseded_by__isnull=True
                )
                .order_by("id")
                .values_list("id", flat=True)[:SETTLE_BATCH]
            )
            if not batch:
                break
            settled += Notification.objects.filter(id__in=batch, read_at__isnull=True).update(read_at=mark.marked_at)
    ReadMark.objects.filter(user_id=user_id, settled_up_to__lt=mark.up_to).update(settled_up_to=mark.up_to)
    return settled


def notifications_settle_all_read() -> int:
    """Settle every ``ReadMark`` whose rows are not all settled (their job was lost); how many rows."""
    pending = ReadMark.objects.filter(settled_up_to__lt=F("up_to")).values_list("user_id", flat=True)
    return sum(notifications_settle_read(user_id=user_id) for user_id in pending)


def mentioned_user_ids(text: str) -> set[int]:
    """Ids of the active users named as ``@username`` in the text (case-insensitive)."""
    names: set[str] = set()
    for match in MENTION_PATTERN.finditer(text):
        name = match.group(1)
        # "@bob." at the end of a sentence means bob.
        names.update({name, name.rstrip(".-+")} - {""})
        if len(names) >= 2 * MAX_MENTIONS:
            break
    if not names:
        return set()
    query = reduce(or_, (Q(username__iexact=name) for name in names))
    users = get_user_model().objects.filter(query, is_active=True).values_list("pk", flat=True)
    return set(users[:MAX_MENTIONS])


def _without_blockers(recipient_ids: set[int], actor_id: int) -> set[int]:
    blockers = Block.objects.filter(blocked_id=actor_id, blocker_id__in=recipient_ids).values_list(
        "blocker_id", flat=True
    )
    return recipient_ids - set(blockers)


def _muted_post_user_ids(post: Post, user_ids: set[int]) -> set[int]:
    return set(PostMute.objects.filter(post=post, user_id__in=user_ids).values_list("user_id", flat=True))


@transaction.atomic
def comment_notify(*, comment: Comment) -> list[Notification]:
    """Tell the post's author, the parent comment's author and mentioned users about a new comment.

    One notification per user per comment; when several reasons apply, reply
    beats comment beats mention. Never the commenter, never users who blocked
    them; users who muted the post hear only of mentions. Each notification
    groups with the recipient's unread one of the same kind and target.
    """
    post = comment.post
    actor = comment.author
    reasons = dict.fromkeys(mentioned_user_ids(comment.body), Notification.Kind.MENTION)
    candidates = {post.author_id} | ({comment.parent.author_id} if comment.parent_id is not None else set())
    muted = _muted_post_user_ids(post, candidates)
    if post.author_id not in muted:
        reasons[post.author_id] = Notification.Kind.COMMENT
    if comment.parent_id is not None and comment.parent.author_id not in muted:
        reasons[comment.parent.author_id] = Notification.Kind.REPLY
    recipients = _without_blockers(set(reasons) - {actor.pk}, actor.pk)
    title = post.title
    # (one event, a group of them)
    phrases = {
        Notification.Kind.COMMENT: (f"commented on your post “{title}”",) * 2,
        Notification.Kind.REPLY: (f"replied to your comment on “{title}”",) * 2,
        Notification.Kind.MENTION: (
            f"mentioned you in a comment on “{title}”",
            f"mentioned you in comments on “{title}”",
        ),
    }
    targets = {
        Notification.Kind.COMMENT: f"comment:post:{post.pk}",
        Notification.Kind.REPLY: f"reply:comment:{comment.parent_id}",
        Notification.Kind.MENTION: f"mention:post:{post.pk}",
    }
    url = comment.get_absolute_url()
    created = []
    for user_id in sorted(recipients):
        kind = reasons[user_id]
        single, grouped = phrases[kind]
        created.append(
            notification_create(
                recipient_id=user_id,
                kind=kind,
                text=f"{actor.username} {single}",
                url=url,
                actor=actor,
                comment=comment,
                post=post,
                group_key=targets[kind],
                grouped_text=lambda who, grouped=grouped: f"{who} {grouped}",
            )
        )
    return created


@transaction.atomic
def post_notify_mentions(*, post: Post) -> list[Notification]:
    """Tell the users ``@mentioned`` in a new post's title or body (never its author)."""
    actor = post.author
    recipients = _without_blockers(mentioned_user_ids(f"{post.title}\n{post.body}") - {actor.pk}, actor.pk)
    return [
        notification_create(
            recipient_id=user_id,
            kind=Notification.Kind.MENTION,
            text=f"{actor.username} mentioned you in “{post.title}”",
            url=post.get_absolute_url(),
            actor=actor,
            post=post,
        )
        for user_id in sorted(recipients)
    ]


@transaction.atomic
def post_mute_set(*, user_id: int, post: Post, muted: bool) -> bool:
    """Mute (no more comment or reply notifications from the post; mentions still arrive) or unmute."""
    if muted:
        PostMute.objects.get_or_create(user_id=user_id, post=post)
    else:
        PostMute.objects.filter(user_id=user_id, post=post).delete()
    return muted


def clean_preferences(data: Any) -> dict[str, Any]:
    """Validate a (partial) preferences change: ``{"email": {kind: bool}, "email_delay_minutes": int}``.

    Raises ValueError with a message for the user; returns the model fields to set.
    """
    if not isinstance(data, dict) or not data:
        raise ValueError('send {"email": {...}} and/or {"email_delay_minutes": n}')
    unknown = set(data) - {"email", "email_delay_minutes"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    fields: dict[str, Any] = {}
    if "email" in data:
        email = data["email"]
        if not isinstance(email, dict):
            raise ValueError("email must be an object of kind: true|false")
        for kind, enabled in email.items():
            if kind not in email_kinds():
                raise ValueError(f"email kind must be one of {', '.join(email_kinds())}")
            if not isinstance(enabled, bool):
                raise ValueError(f"email.{kind} must be true or false")
            fields[f"email_{kind}"] = enabled
    if "email_delay_minutes" in data:
        delay = data["email_delay_minutes"]
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_EMAIL_DELAY_MINUTES:
            raise ValueError(f"email_delay_minutes must be an integer from 0 to {MAX_EMAIL_DELAY_MINUTES}")
        fields["email_delay_minutes"] = delay
    return fields


@transaction.atomic
def preferences_update(*, user_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Store cleaned preference fields (``clean_preferences``); returns the user's preferences."""
    defaults = default_preferences(user_id)
    row, _ = Preferences.objects.select_for_update().get_or_create(
        user_id=user_id, defaults={"email_delay_minutes": defaults.email_delay_minutes}
    )
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return preferences_of(user_id=user_id)
