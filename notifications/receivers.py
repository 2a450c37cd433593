"""Signal receivers: one line each, the rules live in notifications.services.

They run inside the transaction that saved the post or comment, so the
notification rows commit or roll back with it, and pushes wait for the commit.
"""

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from notifications import services
from social.models import Comment, Post


@receiver(post_save, sender=Comment, dispatch_uid="notifications.comment_created")
def on_comment_saved(sender: Any, instance: Comment, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """A new comment notifies the post's author, the parent's author and @mentions."""
    if created and not raw:
        services.comment_notify(comment=instance)


@receiver(post_save, sender=Post, dispatch_uid="notifications.post_created")
def on_post_saved(sender: Any, instance: Post, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """A new post notifies the users it @mentions."""
    if created and not raw:
        services.post_notify_mentions(post=instance)
