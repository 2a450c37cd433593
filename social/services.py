"""Services of the social core: posts, comments and session revocation."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction

from social.models import Comment, Post
from social.realtime import protocol
from social.realtime.groups import control_group
from social.realtime.publish import send_on_commit


@transaction.atomic
def post_create(*, author: Any, title: str, body: str) -> Post:
    """Store a post (signals turn its @mentions into notifications on commit)."""
    return Post.objects.create(author=author, title=title, body=body)


@transaction.atomic
def comment_create(*, author: Any, post: Post, body: str, parent: Comment | None = None) -> Comment:
    """Store a comment, optionally a reply to another comment on the same post."""
    if parent is not None and parent.post_id != post.pk:
        raise ValueError("a reply must be on the same post as its parent")
    return Comment.objects.create(author=author, post=post, body=body, parent=parent)


def end_session_sockets(*, user_id: int, session_key: str | None) -> None:
    """Close every socket opened with this (now logged-out) session, on every process."""
    if session_key:
        send_on_commit(control_group(user_id), protocol.session_end_event(session_key))


def recheck_user_sockets(*, user_id: int) -> None:
    """Make every socket of the user re-check its session once this transaction commits."""
    send_on_commit(control_group(user_id), protocol.session_check_event())


def remember_credentials(*, user: Any, update_fields: Any) -> None:
    """Before a user is saved, note whether the password or active flag is changing."""
    user._credentials_changed = False
    if user.pk is None or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return
    old = get_user_model().objects.filter(pk=user.pk).values("password", "is_active").first()
    user._credentials_changed = old is not None and (
        old["password"] != user.password or old["is_active"] != user.is_active
    )


def recheck_sockets_if_credentials_changed(*, user: Any) -> None:
    """After a save that changed the password or deactivated the user, re-check their sockets."""
    if getattr(user, "_credentials_changed", False):
        user._credentials_changed = False
        recheck_user_sockets(user_id=user.pk)


@transaction.atomic
def sessions_end_all(*, users: Any) -> int:
    """Delete every session of these users (admin action); their sockets close.

    Sessions do not store their user in a column, so every session is decoded
    once, for all the users together.
    """
    user_ids = {str(user.pk) for user in users}
    keys = [
        session.session_key
        for session in Session.objects.iterator()
        if str(session.get_decoded().get("_auth_user_id")) in user_ids
    ]
    Session.objects.filter(session_key__in=keys).delete()
    for user_id in user_ids:
        recheck_user_sockets(user_id=int(user_id))
    return len(keys)
