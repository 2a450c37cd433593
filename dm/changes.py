"""Writes that change stored messages: edit, delete, react.

Each change runs in one transaction under the conversation's row lock
(dm.versions), gives the message its next ``version`` and publishes one
``message_update`` per changed message when it commits. Replies quote the
message they answer, so a change of its body also restamps its replies: a
client resuming with ``?since=`` then gets their new quotes too.

Authorisation of the conversation itself (member, not blocked) is the
caller's (``dm.access``); the rules of the message (your own; a room's owner
may delete) are here, refused with ``protocol.ProtocolError`` carrying the
message id, which leaves the socket open.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from dm import versions
from dm.models import Conversation, Message, Reaction
from dm.services import (
    conversation_event,
    conversation_group,
    direct_peer_id,
    inbox_total_on_commit,
    posting_refusal,
)
from social import bounds
from social.realtime import protocol
from social.realtime.publish import send_many_on_commit

_REACTION = Reaction._meta.db_table
# A message's reactions as the message object lists them: per emoji in the
# order it was first used, its exact count and its earliest users.
_REACTIONS_SQL = f"""
    SELECT emoji, user_id, total FROM (
        SELECT emoji, user_id, id,
               ROW_NUMBER() OVER (PARTITION BY emoji ORDER BY id) AS position,
               COUNT(*) OVER (PARTITION BY emoji) AS total,
               MIN(id) OVER (PARTITION BY emoji) AS first_id
        FROM {_REACTION} WHERE message_id = %s
    ) ranked
    WHERE position <= {bounds.REACTION_USERS_LISTED}
    ORDER BY first_id, id
"""


def _refused(change: protocol.Change, code: str, text: str) -> protocol.ProtocolError:
    return protocol.ProtocolError(code, text, message_id=change.message_id)


@transaction.atomic
def message_change(*, user: Any, conversation: Conversation, change: protocol.Change) -> list[Message]:
    """Apply an edit, delete or react of ``user`` in ``conversation``: the messages whose state
    changed (published on commit), empty when nothing changed.

    Raises ``PostingRefused`` when the user may no longer write to the
    conversation (checked under its lock), and ``protocol.ProtocolError``
    (nothing changed) for a message not in the conversation, someone else's
    (``forbidden``; a room's owner may delete), a deleted one, or a 21st
    distinct emoji.
    """
    connection = connections[Message.objects.db]
    direct = conversation.kind == Conversation.Kind.DIRECT
    peer = direct_peer_id(conversation=conversation, user_id=user.pk) if direct else None
    if not versions.lock_conversation(connection, conversation.pk, poster=user.pk, peer=peer):
        raise posting_refusal(user, conversation)
    message = (
        Message.objects.select_related("sender", "reply_to__sender")
        .filter(pk=change.message_id, conversation=conversation)
        .first()
    )
    if message is None:
        raise _refused(change, protocol.INVALID, "no such message in this conversation")
    if change.kind == protocol.CLIENT_DELETE:
        changed = _delete(user, conversation, message, change)
    elif message.deleted:
        raise _refused(change, protocol.FORBIDDEN, "this message was deleted")
    elif change.kind == protocol.CLIENT_EDIT:
        changed = _edit(user, message, change)
    else:
        changed = _react(user, message, change)
    if not changed:
        return []
    changed_messages = [message]
    if change.kind != protocol.CLIENT_REACT:
        changed_messages += _replies_quoting(message)
    stamps = versions.restamp(connection, [changed.pk for changed in changed_messages])
    for changed_message in changed_messages:
        changed_message.version = stamps[changed_message.pk]
    _publish_on_commit(conversation, changed_messages)
    if change.kind == protocol.CLIENT_DELETE and conversation.kind == Conversation.Kind.DIRECT:
        # A deleted message no longer counts as unread.
        inbox_total_on_commit(direct_peer_id(conversation=conversation, user_id=message.sender_id))
    return changed_messages


def _edit(user: Any, message: Message, change: protocol.Change) -> bool:
    if message.sender_id != user.pk:
        raise _refused(change, protocol.FORBIDDEN, "you can only edit your own messages")
    if change.body == message.body:
        return False
    message.body, message.edited_at = change.body, timezone.now()
    message.save(update_fields=["body", "edited_at"])
    return True


def _delete(user: Any, conversation: Conversation, message: Message, change: protocol.Change) -> bool:
    owner = conversation.kind == Conversation.Kind.ROOM and conversation.created_by_id == user.pk
    if message.sender_id != user.pk and not owner:
        raise _refused(change, protocol.FORBIDDEN, "you can only delete your own messages")
    if message.deleted:
        return False
    Reaction.objects.filter(message=message).delete()
    # The text goes for good; the row stays as a tombstone in its place.
    message.deleted, message.body, message.reactions = True, "", []
    message.save(update_fields=["deleted", "body", "reactions"])
    return True


def _react(user: Any, message: Message, change: protocol.Change) -> bool:
    removed, _ = Reaction.objects.filter(message=message, user=user, emoji=change.emoji).delete()
    if not removed:
        used = set(Reaction.objects.filter(message=message).values_list("emoji", flat=True))
        if change.emoji not in used and len(used) >= bounds.DISTINCT_REACTIONS:
            raise _refused(
                change, protocol.INVALID, f"a message takes at most {bounds.DISTINCT_REACTIONS} different reactions"
            )
        Reaction.objects.create(message=message, user=user, emoji=change.emoji)
    message.reactions = reactions_summary(message.pk)
    message.save(update_fields=["reactions"])
    return True


def reactions_summary(message_id: int) -> list[protocol.ReactionObject]:
    """The message's reactions as its object lists them (see ``_REACTIONS_SQL``)."""
    summary: dict[str, protocol.ReactionObject] = {}
    with connections[Reaction.objects.db].cursor() as cursor:
        cursor.execute(_REACTIONS_SQL, [message_id])
        for emoji, user_id, total in cursor.fetchall():
            entry = summary.setdefault(emoji, {"emoji": emoji, "count": total, "users": []})
            entry["users"].append(user_id)
    return list(summary.values())


def _replies_quoting(message: Message) -> list[Message]:
    """The replies to ``message``, loaded with the new state of their quote."""
    replies = list(Message.objects.select_related("sender").filter(reply_to=message).order_by("pk"))
    for reply in replies:
        reply.reply_to = message
    return replies


def _publish_on_commit(conversation: Conversation, messages: list[Message]) -> None:
    group = conversation_group(conversation)
    # Built now, under the lock: each frame is the state its version names.
    events = [
        (
            group,
            conversation_event(
                conversation,
                protocol.message_update_frame(protocol.message_dict(message)),
                sender=message.sender_id,
                version=message.version,
            ),
        )
        for message in messages
    ]
    send_many_on_commit(lambda: events)
