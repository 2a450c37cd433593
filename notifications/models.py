"""Notifications: one row per thing a user should be told about."""

from django.conf import settings
from django.db import models

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

    class Meta:
        ordering = ["-id"]
        indexes = [
            # "user's notifications after id" (resume) and newest-first pages.
            models.Index(fields=["recipient", "id"], name="notif_recipient_id"),
            # "unread of user" (the badge), kept small by the condition.
            models.Index(fields=["recipient"], condition=models.Q(read_at__isnull=True), name="notif_unread"),
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
