"""Signal receivers of the social app: close sockets whose session ended."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from social import services


@receiver(user_logged_out)
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Close the sockets of the session that just logged out."""
    if user is not None and request is not None:
        services.end_session_sockets(user_id=user.pk, session_key=request.session.session_key)


@receiver(pre_save, sender=get_user_model())
def remember_credentials(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Note whether this save changes the password or the active flag."""
    services.remember_credentials(user=instance, update_fields=kwargs.get("update_fields"))


@receiver(post_save, sender=get_user_model())
def on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """After such a change, make the user's sockets re-check their sessions."""
    services.recheck_sockets_if_credentials_changed(user=instance)
