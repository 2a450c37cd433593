"""Email for people who are away: composing digests, sending them at most once, unsubscribing.

What is still unread ``email_delay_minutes`` after it was created (a
notification, or a direct message past the reader's marker) and not yet
emailed goes into one digest per user, at most one per delay window.

At most once, also with several workers and one killed mid-send:

1. Composing locks the user's preferences row (``SKIP LOCKED`` on PostgreSQL:
   a worker already composing for that user is left to it; SQLite serialises
   writers), marks every item emailed and stores the rendered email as a
   ``Digest`` row, all in one transaction: an item is in one digest or none.
2. Sending claims the digest with a conditional UPDATE (``claimed_at IS
   NULL``) before talking to the SMTP server; only the claimer sends. A
   worker killed between its claim and ``sent_at`` leaves the digest claimed
   and unsent: it is not retried, because it may have reached the server
   (docs/notifications.md). Only a server that could not be reached at all
   gives the claim back, for a later retry.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from dm.models import Block, Conversation, Membership, Message
from notifications.models import Digest, Notification, Preferences, ReadMark
from notifications.selectors import EMAIL_DIRECT, default_preferences, unread

log = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
# Items older than this are never emailed (email turned on later does not
# send a backlog, and the sweep's scan stays bounded).
MAX_ITEM_AGE = timedelta(days=2)
# A digest stored but never claimed this long (its send job was lost) is enqueued again.
ORPHAN_AFTER = timedelta(minutes=5)
EXCERPT_CHARS = 140
KIND_LABELS = {
    "comment": "comments on your posts",
    "reply": "replies to your comments",
    "mention": "mentions",
    "system": "announcements",
    EMAIL_DIRECT: "direct messages",
}


@dataclass(frozen=True)
class DigestItem:
    """One line of a digest: what happened, and the link to it."""

    kind: str
    text: str
    url: str
    created_at: datetime


def worker_name() -> str:
    """``host:pid`` of this process, stored on the digests it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def absolute(path: str) -> str:
    """A site path as a link for an email (http(s) URLs stay as they are)."""
    return path if path.startswith(("http://", "https://")) else settings.ATTENTION["SITE_URL"] + path


def unsubscribe_token(user_id: int, kinds: list[str]) -> str:
    """A signed token that turns these email kinds off for the user, without logging in."""
    return signing.dumps({"u": user_id, "k": sorted(kinds)}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, list[str]]:
    """(user id, kinds) of a token; ``signing.BadSignature`` when it was not made here."""
    data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    kinds = [kind for kind in data.get("k", []) if kind in KIND_LABELS]
    if not isinstance(data.get("u"), int) or not kinds:
        raise signing.BadSignature("incomplete unsubscribe token")
    return data["u"], kinds


def unsubscribe_url(user_id: int, kinds: list[str]) -> str:
    """The absolute one-click unsubscribe link for these kinds."""
    return absolute(reverse("email_unsubscribe", args=[unsubscribe_token(user_id, kinds)]))


def _enabled_kinds(preferences: Preferences) -> set[str]:
    return {kind for kind in KIND_LABELS if getattr(preferences, f"email_{kind}")}


def _due_notifications(user_id: int, kinds: set[str], oldest: datetime, cutoff: datetime) -> list[Notification]:
    return list(
        unread(user_id=user_id)
        .filter(emailed_at__isnull=True, kind__in=kinds, created_at__gt=oldest)
        # Due a delay after its first event (a group's earliest), not its latest.
        .annotate(due_from=Coalesce("first_event_at", "created_at"))
        .filter(due_from__lte=cutoff)
        .order_by("id")
    )


def _due_direct_messages(user_id: int, oldest: datetime, cutoff: datetime) -> list[Message]:
    """Unread direct messages to the user in conversations they did not mute, not yet emailed."""
    mine = Membership.objects.filter(
        user_id=user_id, conversation_id=OuterRef("conversation_id"), muted=False,
        last_read_id__lt=OuterRef("pk"), emailed_up_to__lt=OuterRef("pk"),
    )
    blocked = Block.objects.filter(blocker_id=user_id).values("blocked_id")
    return list(
        Message.objects.filter(
            Exists(mine),
            conversation__kind=Conversation.Kind.DIRECT,
            deleted=False,
            created_at__gt=oldest,
            created_at__lte=cutoff,
        )
        .exclude(sender_id=user_id)
        .exclude(sender_id__in=blocked)
        .select_related("sender")
        .order_by("id")
    )


def candidate_user_ids(*, now: datetime) -> set[int]:
    """Users who may have something due (each is checked against their own delay when composing)."""
    oldest, newest = now - MAX_ITEM_AGE, now - timedelta(minutes=1)
    notified = unread().filter(emailed_at__isnull=True, created_at__gt=oldest, created_at__lte=newest)
    pending_message = Message.objects.filter(
        conversation_id=OuterRef("conversation_id"),
        id__gt=OuterRef("last_read_id"),
        created_at__lte=newest,
    ).exclude(sender_id=OuterRef("user_id"))
    messaged = Membership.objects.filter(
        conversation__kind=Conversation.Kind.DIRECT,
        conversation__last_message_at__gt=oldest,
        muted=False,
    ).filter(Exists(pending_message.filter(id__gt=OuterRef("emailed_up_to"))))
    email_off = Preferences.objects.filter(email_delay_minutes=0).values("user_id")
    return set(notified.exclude(recipient_id__in=email_off).values_list("recipient_id", flat=True).distinct()) | set(
        messaged.exclude(user_id__in=email_off).values_list("user_id", flat=True).distinct()
    )


def _preferences_row(user_id: int) -> None:
    """Make sure the user has a preferences row to lock (two workers may race to create it)."""
    if Preferences.objects.filter(user_id=user_id).exists():
        return
    try:
        with transaction.atomic():
            Preferences.objects.create(
                user_id=user_id, email_delay_minutes=default_preferences(user_id).email_delay_minutes
            )
    except IntegrityError:
        pass


def _direct_items(messages: list[Message]) -> list[DigestItem]:
    items = []
    peers = {}
    for message in messages:
        peers.setdefault(message.conversation_id, message.sender.username)
        body = " ".join(message.body.split())
        excerpt = body if len(body) <= EXCERPT_CHARS else body[: EXCERPT_CHARS - 1] + "…"
        url = absolute(f"/messages/{peers[message.conversation_id]}/#message-{message.pk}")
        items.append(DigestItem(EMAIL_DIRECT, f"{message.sender.username}: {excerpt}", url, message.created_at))
    return items


def _render(user: Any, items: list[DigestItem]) -> dict[str, Any]:
    kinds = sorted({item.kind for item in items})
    unsubscribe_all = unsubscribe_url(user.pk, kinds)
    context = {
        "user": user,
        "items": items,
        "site_url": settings.ATTENTION["SITE_URL"],
        "settings_url": absolute(reverse("notification_settings")),
        "unsubscribe": [(KIND_LABELS[kind], unsubscribe_url(user.pk, [kind])) for kind in kinds],
    }
    count = len(items)
    return {
        "subject": f"{count} unread item{'s' if count != 1 else ''} waiting for you",
        "text": render_to_string("notifications/email/digest.txt", context),
        "html": render_to_string("notifications/email/digest.html", context),
        "unsubscribe_url": unsubscribe_all,
    }


def digest_compose(*, user_id: int, now: datetime | None = None) -> Digest | None:
    """Take everything due for the user into one stored digest (items marked emailed); None when
    nothing is due, their delay window is not over, email is off, or another worker is on it."""
    now = now or timezone.now()
    user = get_user_model().objects.filter(pk=user_id, is_active=True).exclude(email="").first()
    if user is None:
        return None
    _preferences_row(user_id)
    with transaction.atomic():
        # SKIP LOCKED: a user another worker is composing for is theirs.
        preferences = Preferences.objects.select_for_update(skip_locked=True).filter(user_id=user_id).first()
        if preferences is None or preferences.email_delay_minutes == 0:
            return None
        delay = timedelta(minutes=preferences.email_delay_minutes)
        if preferences.last_digest_at is not None and preferences.last_digest_at > now - delay:
            return None
        kinds = _enabled_kinds(preferences)
        oldest, cutoff = now - MAX_ITEM_AGE, now - delay
        notifications = _due_notifications(user_id, kinds - {EMAIL_DIRECT}, oldest, cutoff)
        messages = _due_direct_messages(user_id, oldest, cutoff) if EMAIL_DIRECT in kinds else []
        if not notifications and not messages:
            return None
        Notification.objects.filter(pk__in=[n.pk for n in notifications], emailed_at__isnull=True).update(
            emailed_at=now
        )
        newest_by_conversation: dict[int, int] = {}
        for message in messages:
            newest_by_conversation[message.conversation_id] = message.pk
        for conversation_id, newest in newest_by_conversation.items():
            Membership.objects.filter(
                conversation_id=conversation_id, user_id=user_id, emailed_up_to__lt=newest
            ).update(emailed_up_to=newest)
        items = [
            DigestItem(n.kind, n.text, absolute(n.url or reverse("notifications_page")), n.created_at)
            for n in notifications
        ] + _direct_items(messages)
        items.sort(key=lambda item: item.created_at)
        digest = Digest.objects.create(
            user_id=user_id, to=user.email, items=len(items), created_at=now, **_render(user, items)
        )
        preferences.last_digest_at = now
        preferences.save(update_fields=["last_digest_at"])
        _enqueue_send(digest.pk)
    return digest


def _enqueue_send(digest_id: int) -> None:
    # Inside the composing transaction: with the database task backend the
    # job row commits (or rolls back) with the digest; the sweep re-enqueues
    # a digest whose job was lost anyway, and the claim keeps it to one send.
    from notifications.tasks import send_digest

    send_digest.enqueue(digest_id)


def digests_compose_due(*, now: datetime | None = None) -> list[int]:
    """Compose a digest for every user with something due; the new digests' ids."""
    now = now or timezone.now()
    composed = []
    for user_id in sorted(candidate_user_ids(now=now)):
        try:
            digest = digest_compose(user_id=user_id, now=now)
        except Exception:
            # One user's failure (logged) must not stop everybody after them.
            log.exception("composing the digest of user %s failed", user_id)
            continue
        if digest is not None:
            composed.append(digest.pk)
    for orphan in Digest.objects.filter(claimed_at__isnull=True, created_at__lt=now - ORPHAN_AFTER).values_list(
        "pk", flat=True
    ):
        _enqueue_send(orphan)
    return composed


def digest_send(*, digest_id: int, worker: str | None = None) -> bool:
    """Claim the digest and send it; False when another worker claimed it first (or it is gone)."""
    claimed = Digest.objects.filter(pk=digest_id, claimed_at__isnull=True).update(
        claimed_at=timezone.now(), claimed_by=(worker or worker_name())[:100]
    )
    if not claimed:
        return False
    digest = Digest.objects.get(pk=digest_id)
    message = EmailMultiAlternatives(
        subject=digest.subject,
        body=digest.text,
        to=[digest.to],
        headers={
            "List-Unsubscribe": f"<{digest.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(digest.html, "text/html")
    connection = get_connection()
    try:
        connection.open()
    except Exception:
        # The mail server was not reached, so it cannot have the digest: give the
        # claim back, and the sweep enqueues it again (ORPHAN_AFTER). Once the
        # connection is open a failure is ambiguous, and the claim stays.
        Digest.objects.filter(pk=digest_id, sent_at__isnull=True).update(claimed_at=None, claimed_by="")
        raise
    try:
        connection.send_messages([message])
    finally:
        connection.close()
    Digest.objects.filter(pk=digest_id).update(sent_at=timezone.now())
    return True


@transaction.atomic
def email_unsubscribe(*, token: str) -> tuple[Any, list[str]]:
    """Turn the token's kinds off for its user: (user, kinds). ``signing.BadSignature`` for a bad token."""
    user_id, kinds = read_unsubscribe_token(token)
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise signing.BadSignature("no such user")
    _preferences_row(user_id)
    Preferences.objects.filter(user_id=user_id).update(**{f"email_{kind}": False for kind in kinds})
    return user, kinds


# Rows the prune reads, and at most deletes, per transaction.
PRUNE_BATCH = 1000


def notifications_prune(*, now: datetime | None = None) -> int:
    """Delete the notifications older than ATTENTION["RETENTION_DAYS"] that are read (``read_at``, or
    under their recipient's ``ReadMark``) or superseded, and digests as old; how many notification
    rows went.

    It walks the table from its oldest id, ``PRUNE_BATCH`` rows per transaction, and stops at
    the first batch that reaches the cutoff (ids grow with ``created_at``). Superseded rows
    go by their own age: nothing cascades along ``superseded_by`` (models.py). One
    ``delete()`` of everything due loaded every row into memory and failed on a year of
    data: Django's cascade sent the 750,000 ids as parameters of one statement, past
    PostgreSQL's 65,535.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.ATTENTION["RETENTION_DAYS"])
    deleted, after = 0, 0
    while True:
        with transaction.atomic():
            batch = list(
                Notification.objects.filter(id__gt=after)
                .order_by("id")
                .values_list("id", "recipient_id", "created_at", "read_at", "superseded_by_id")[:PRUNE_BATCH]
            )
            if not batch:
                break
            marks = dict(
                ReadMark.objects.filter(user_id__in={row[1] for row in batch}).values_list("user_id", "up_to")
            )
            due = [
                pk
                for pk, recipient_id, created_at, read_at, group in batch
                if created_at < cutoff and (read_at or group or pk <= marks.get(recipient_id, 0))
            ]
            if due:
                _, by_model = Notification.objects.filter(pk__in=due).delete()
                deleted += by_model.get(Notification._meta.label, 0)
        after, newest_created = batch[-1][0], batch[-1][2]
        if newest_created >= cutoff:
            break
    Digest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def kind_labels(kinds: list[str]) -> list[str]:
    """What each email kind is called in emails and on the unsubscribe page."""
    return [KIND_LABELS[kind] for kind in kinds]

