"""Notifications: one row per thing a user should be told about; a user's attention settings.

A notification that repeats an unread one of the same kind about the same
target (its ``group_key``) is stored as a new row that groups them and
supersedes the older one (``superseded_by``); superseded rows are invisible
everywhere and go once past the retention.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from social import bounds


class Notification(models.Model):
    class Kind(models.TextChoices):
        COMMENT = "comment"
        MENTION = "mention"
        REPLY = "reply"
        SYSTEM = "system"

    # Not indexed alone: (recipient, id) leads with it (one index fewer to write per row).
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SYSTEM)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.CharField(max_length=bounds.NOTIFICATION_TEXT_CHARS)
    url = models.CharField(max_length=bounds.NOTIFICATION_URL_CHARS, blank=True, default="")
    # The comment that caused it, so one comment notifies a user at most once.
    comment = models.ForeignKey("social.Comment", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    post = models.ForeignKey("social.Post", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Kind and target ("comment:post:3"): an unread notification with the same
    # key is superseded by the next one. Empty: never grouped.
    group_key = models.CharField(max_length=80, blank=True, default="")
    # Nothing cascades along it, and it is no database constraint: a busy post's
    # group is a chain of rows, each superseded by the next, and a cascade down
    # it recursed once per row (RecursionError at a few hundred) whenever its
    # newest row was deleted (with its comment, its user, from the admin). A row
    # whose group is gone stays superseded, so unseen, until the prune takes it.
    superseded_by = models.ForeignKey(
        "self", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    # How many events the row groups, the distinct actors newest first
    # ({"id", "username"} as they were), and every id it supersedes.
    count = models.PositiveIntegerField(default=1)
    actors = models.JSONField(default=list, blank=True)
    replaces = models.JSONField(default=list, blank=True)
    # Taken into an email digest (set before the digest is sent: at most once).
    emailed_at = models.DateTimeField(null=True, blank=True)
    # When the earliest event it groups happened (its own created_at when it
    # groups none): its email is due a delay after that, so a steady trickle
    # of new events cannot keep pushing the email back.
    first_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # "user's notifications after id" (resume) and newest-first pages.
            models.Index(fields=["recipient", "id"], name="notif_recipient_id"),
            # "unread of user above their read mark" (the badge): an index-only range,
            # kept small by the condition.
            models.Index(
                fields=["recipient", "id"],
                condition=models.Q(read_at__isnull=True, superseded_by__isnull=True),
                name="notif_unread_by_id",
            ),
            # The open group of a key (grouping) and what digests still owe.
            models.Index(
                fields=["recipient", "group_key"],
                condition=models.Q(read_at__isnull=True, superseded_by__isnull=True),
                name="notif_open_group",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(read_at__isnull=True, superseded_by__isnull=True, emailed_at__isnull=True),
                name="notif_email_due",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "comment"],
                condition=models.Q(comment__isnull=False),
                name="notif_once_per_comment",
            ),
            models.UniqueConstraint(
                fields=["recipient", "post"],
                condition=models.Q(post__isnull=False, comment__isnull=True),
                name="notif_once_per_post",
            ),
        ]

    def __str__(self) -> str:
        return f"to {self.recipient_id}: {self.text}"


class ReadMark(models.Model):
    """Every notification of the user with an id up to ``up_to`` is read: mark-all-read in one row.

    Read means ``read_at`` set or an id at or under the mark (``selectors.unread``).
    Mark-all-read moves the mark and leaves the rows; a job then gives the rows
    under it their ``read_at`` in short batches (``settled_up_to`` says how far),
    so the unread indexes shrink back and retention sees them as read. Nothing
    waits for that job: reads already count the mark.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    up_to = models.PositiveBigIntegerField(default=0)
    settled_up_to = models.PositiveBigIntegerField(default=0)
    # When it last moved: the read_at the settled rows get.
    marked_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user_id} read up to {self.up_to}"


class Preferences(models.Model):
    """What reaches a user by email and when; absent means the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attention")
    email_comment = models.BooleanField(default=True)
    email_reply = models.BooleanField(default=True)
    email_mention = models.BooleanField(default=True)
    email_system = models.BooleanField(default=True)
    email_direct = models.BooleanField(default=True)
    # 0 turns email off; else how long an item stays unread before it is emailed.
    email_delay_minutes = models.PositiveIntegerField(default=10)
    # When the user's last digest was composed: at most one per delay window.
    last_digest_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class PostMute(models.Model):
    """The user hears of no more comments or replies on this post (mentions still arrive)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey("social.Post", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "post"], name="post_mute_once")]

    def __str__(self) -> str:
        return f"{self.user_id} muted post {self.post_id}"


class Digest(models.Model):
    """One composed email (the outbox row): its items were marked emailed when it was stored.

    A worker claims it (``claimed_at``) with a conditional update before
    sending, so it is sent at most once; one whose worker died mid-send stays
    claimed and unsent, and is not retried (docs/notifications.md).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=200)
    text = models.TextField()
    html = models.TextField()
    unsubscribe_url = models.CharField(max_length=500)
    items = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"digest {self.pk} to {self.user_id}"


class JobSchedule(models.Model):
    """When a periodic job is next due; a run claims it by moving ``next_run_at`` (one runner per period)."""

    name = models.CharField(max_length=100, unique=True)
    next_run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.next_run_at}"
