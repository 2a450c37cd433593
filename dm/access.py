"""Who may see and write which conversation.

Every path (sockets, pages, the JSON API) authorises through these helpers, so
they all refuse the same way: ``NotFound`` (404 / close 4404) or
``AccessDenied`` (403 / close 4403).
"""

from __future__ import annotations

from typing import Any

from dm import selectors, services
from dm.models import Conversation, RoomInvitation
from social.http import Refused
from social.realtime import protocol


class AccessDenied(Refused):
    """The user may not use this conversation."""

    status = 403
    close_code = protocol.CLOSE_FORBIDDEN


class NotFound(AccessDenied):
    """No such user or room."""

    status = 404
    close_code = protocol.CLOSE_NOT_FOUND


class Deactivated(AccessDenied):
    """The user's account was deactivated (by any path) after the socket opened."""

    status = 401
    close_code = protocol.CLOSE_NOT_LOGGED_IN


def access_peer(user: Any, username: str) -> Any:
    """The active user named ``username``, who is not ``user``."""
    peer = selectors.active_user(username=username)
    if peer is None:
        raise NotFound("no such user")
    if peer.pk == user.pk:
        raise AccessDenied("you cannot message yourself")
    return peer


def access_direct(user: Any, username: str) -> tuple[Conversation, Any]:
    """The direct conversation with ``username`` (created on first use) and the peer; refused when blocked."""
    peer = access_peer(user, username)
    if selectors.blocked_between(user_a_id=user.pk, user_b_id=peer.pk):
        raise AccessDenied("messages between you and this user are blocked")
    return services.direct_conversation_get_or_create(user_a=user, user_b=peer), peer


def _room(slug: str) -> Conversation:
    room = selectors.room_by_slug(slug=slug)
    if room is None:
        raise NotFound("no such room")
    return room


def access_room(user: Any, slug: str) -> Conversation:
    """A room the user may read: any public room, or a private room they are a member of."""
    room = _room(slug)
    if room.private and not selectors.is_member(conversation_id=room.pk, user_id=user.pk):
        raise AccessDenied("this room is private")
    return room


def access_room_page(user: Any, slug: str) -> tuple[Conversation, RoomInvitation | None]:
    """A room the user may read with None, or a private room they are invited to with the invitation."""
    room = _room(slug)
    if not room.private or selectors.is_member(conversation_id=room.pk, user_id=user.pk):
        return room, None
    invitation = selectors.room_invitation(conversation_id=room.pk, user_id=user.pk)
    if invitation is None:
        raise AccessDenied("this room is private")
    return room, invitation


def access_room_join(user: Any, slug: str) -> Conversation:
    """A room the user may chat in; opening a public room, or a private one they are invited to, makes them a member."""
    room = _room(slug)
    if not room.private:
        services.room_join(user=user, conversation=room)
    elif (
        not selectors.is_member(conversation_id=room.pk, user_id=user.pk)
        and services.room_invitation_accept(user=user, room=room) is None
    ):
        raise AccessDenied("this room is private")
    return room


def access_room_invitation(user: Any, slug: str) -> Conversation:
    """A private room the user holds a pending invitation to."""
    room = _room(slug)
    if not room.private or selectors.room_invitation(conversation_id=room.pk, user_id=user.pk) is None:
        raise AccessDenied("you have no invitation to this room")
    return room


def access_room_manage(user: Any, slug: str) -> Conversation:
    """A private room whose creator is ``user`` (who alone may invite and remove members)."""
    room = access_room(user, slug)
    if not room.private or room.created_by_id != user.pk:
        raise AccessDenied("only the creator of a private room can manage its members")
    return room


def access_membership(user: Any, conversation_id: int) -> Conversation:
    """A conversation the user is a member of (pending invitees are not); NotFound otherwise."""
    conversation = Conversation.objects.filter(pk=conversation_id, memberships__user=user).first()
    if conversation is None:
        raise NotFound("no such conversation")
    return conversation


def access_post(user: Any, conversation: Conversation) -> None:
    """Refuse unless the user may write to the conversation right now (active, member, not blocked in a DM).

    One query: it runs before every frame a socket acts on.
    """
    peer_id = (
        services.direct_peer_id(conversation=conversation, user_id=user.pk)
        if conversation.kind == Conversation.Kind.DIRECT
        else None
    )
    refusal = selectors.posting_rights(conversation_id=conversation.pk, user_id=user.pk, peer_id=peer_id).refusal()
    if refusal is not None:
        close_code, reason = refusal
        raise (Deactivated if close_code == protocol.CLOSE_NOT_LOGGED_IN else AccessDenied)(reason)
