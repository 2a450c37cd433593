"""Writes of the messaging app: conversations, messages, read markers, rooms, invitations, blocks, presence.

The database is the record and the channel layer only a doorbell: every write
publishes after its transaction commits, and a lost publish is repaired by the
client's ``?after=<id>`` resume. Authorisation is not done here but in
``dm.access``; these functions keep the data's own rules, among them that a
message is stored only from a member and never between users who blocked
each other.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from dm import selectors
from dm.models import Block, Conversation, Membership, Message, Presence, PresenceVersion, RoomInvitation
from notifications.services import notify
from social.realtime import limits, protocol
from social.realtime.groups import control_group, direct_group, room_group, user_group
from social.realtime.publish import group_send, group_send_many, run_sync, send_on_commit

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    """What ``message_send`` did."""

    message: Message
    # False when the client_id was already stored: the stored message is returned.
    created: bool
    # Set once the transaction commits: whether the group broadcast (the sender's echo) went out.
    broadcast: bool = False
    # A DM recipient's unread total, when the store counted it (PostgreSQL).
    inbox_unread: int | None = None
    # The (group, event) pairs published for a newly stored message, the
    # conversation's first (its text is the sender's echo).
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def direct_key(user_a_id: int, user_b_id: int) -> str:
    """The unique key of a pair's direct conversation, lowest id first."""
    low, high = sorted((user_a_id, user_b_id))
    return f"{low}:{high}"


def direct_peer_id(*, conversation: Conversation, user_id: int) -> int:
    """The id of the other user of a direct conversation."""
    low, high = (int(part) for part in conversation.direct_key.split(":"))
    return high if low == user_id else low


def conversation_group(conversation: Conversation) -> str:
    """The channel-layer group every socket of the conversation listens on."""
    if conversation.kind == Conversation.Kind.DIRECT:
        low, high = (int(part) for part in conversation.direct_key.split(":"))
        return direct_group(low, high)
    return room_group(conversation.pk)


def _access_check_on_commit(*user_ids: int) -> None:
    # Sockets cache who may talk where; make every socket of these users re-check
    # once the change is visible to them, so removed or blocked users are cut off at once.
    for user_id in user_ids:
        send_on_commit(control_group(user_id), protocol.access_check_event())


@transaction.atomic
def direct_conversation_get_or_create(*, user_a: Any, user_b: Any) -> Conversation:
    """The direct conversation of a pair with both memberships, created on first use."""
    key = direct_key(user_a.pk, user_b.pk)
    conversation = Conversation.objects.filter(direct_key=key).first()
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(kind=Conversation.Kind.DIRECT, direct_key=key)
            Membership.objects.bulk_create(
                [Membership(conversation=conversation, user=user_a), Membership(conversation=conversation, user=user_b)]
            )
    except IntegrityError:
        # Both users opened the window at once: the unique direct_key let one
        # insert win; use the winner's row (committed, so visible now).
        conversation = Conversation.objects.get(direct_key=key)
    return conversation


def _stored(conversation: Conversation, sender: Any, client_ids: list[str]) -> dict[str, Message]:
    """The sender's stored messages in the conversation with these client_ids, by client_id."""
    found = Message.objects.select_related("sender").filter(
        conversation=conversation, sender=sender, client_id__in=client_ids
    )
    return {message.client_id: message for message in found}


def _poster_params(conversation: Conversation, sender: Any) -> dict[str, Any]:
    """The parameters the posting check and the DM recipient's unread count need."""
    direct = conversation.kind == Conversation.Kind.DIRECT
    peer_id = direct_peer_id(conversation=conversation, user_id=sender.pk) if direct else None
    return {"conversation": conversation.pk, "poster": sender.pk, "peer": peer_id, "reader": peer_id}


def _built_message(
    connection: Any,
    conversation: Conversation,
    sender: Any,
    pk: int,
    body: str,
    created_at: Any,
    client_id: str | None,
) -> Message:
    """The Message a store just inserted, without reading it back."""
    message = Message.from_db(
        connection.alias, _MESSAGE_COLUMNS, [pk, conversation.pk, sender.pk, body, created_at, client_id]
    )
    message.sender = sender
    return message


# The insert and the conversation's activity stamp run on every message, so
# they are SQL rather than ORM calls (1.3 ms of query building each on the
# benchmark machine; see selectors for the reads).
_MESSAGE_COLUMNS = ["id", "conversation_id", "sender_id", "body", "created_at", "client_id"]
_INSERT_MESSAGE_SQL = (
    f"INSERT INTO {Message._meta.db_table} (conversation_id, sender_id, body, created_at, client_id)"
    " VALUES (%(conversation)s, %(poster)s, %(body)s, %(created_at)s, %(client_id)s)"
)
_TOUCH_CONVERSATION_SQL = (
    f"UPDATE {Conversation._meta.db_table} SET last_message_at = %(created_at)s WHERE id = %(conversation)s"
)
# PostgreSQL does it all in one statement, atomic on its own (no BEGIN and
# COMMIT round trips): the insert, only while the sender may post; the stamp;
# and in a DM the recipient's unread total, which the statement's snapshot
# counts without the new message, hence + 1.
_STORE_MESSAGE_POSTGRES_SQL = f"""
    WITH stored AS (
        INSERT INTO {Message._meta.db_table} (conversation_id, sender_id, body, created_at, client_id)
        SELECT %(conversation)s, %(poster)s, %(body)s, %(created_at)s, %(client_id)s
        WHERE {selectors.POSTING_ALLOWED_SQL}
        RETURNING id
    ), touched AS (
        {_TOUCH_CONVERSATION_SQL} AND EXISTS (SELECT 1 FROM stored)
    )
    SELECT id, CASE WHEN %(peer)s::bigint IS NULL THEN NULL ELSE ({selectors.INBOX_UNREAD_SQL}) + 1 END FROM stored
"""


class PostingRefused(Exception):
    """The sender may not post to the conversation (deactivated, not a member, or blocked).

    ``close_code`` and the message say why, for the socket that tried.
    """

    def __init__(self, close_code: int = protocol.CLOSE_FORBIDDEN, message: str = "you may not post here") -> None:
        super().__init__(message)
        self.close_code = close_code


def _insert_message(
    connection: Any, *, conversation: Conversation, sender: Any, body: str, client_id: str | None
) -> tuple[Message, int | None]:
    """Store the message if the sender may post: (message, the DM recipient's unread total or None).

    One statement on PostgreSQL (``_insert_message_postgres``), the portable
    steps elsewhere (``_insert_message_portable``); both raise ``PostingRefused``.
    """
    created_at = timezone.now()
    params = {
        **_poster_params(conversation, sender),
        "body": body,
        "created_at": connection.ops.adapt_datetimefield_value(created_at),
        "client_id": client_id,
    }
    insert = _insert_message_postgres if connection.vendor == "postgresql" else _insert_message_portable
    pk, inbox_unread = insert(connection, params)
    message = _built_message(connection, conversation, sender, pk, body, created_at, client_id)
    return message, inbox_unread


def _insert_message_postgres(connection: Any, params: dict[str, Any]) -> tuple[int, int | None]:
    """The posting check, the insert, the conversation's stamp and a DM recipient's unread total
    in one statement, atomic on its own: (id, unread total or None)."""
    with connection.cursor() as cursor:
        cursor.execute(_STORE_MESSAGE_POSTGRES_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise PostingRefused
    return row[0], row[1]


def _insert_message_portable(connection: Any, params: dict[str, Any]) -> tuple[int, None]:
    """The same as three statements (the caller's transaction makes them atomic); the unread
    total is counted after the commit by ``message_events``."""
    rights = selectors.posting_rights(
        conversation_id=params["conversation"], user_id=params["poster"], peer_id=params["peer"]
    )
    if not rights.allowed:
        raise PostingRefused
    returning = connection.features.can_return_columns_from_insert
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_MESSAGE_SQL + (" RETURNING id" if returning else ""), params)
        pk = cursor.fetchone()[0] if returning else cursor.lastrowid
        cursor.execute(_TOUCH_CONVERSATION_SQL, params)
    return pk, None


def message_store(*, sender: Any, conversation: Conversation, body: str, client_id: str | None) -> SendResult:
    """Store a message without publishing it; a repeated client_id returns the stored message.

    Raises ``protocol.ProtocolError`` for a body or client_id the protocol
    refuses, and ``PostingRefused`` when the sender is not a member or, in a
    DM, either user has blocked the other (checked in the same statement as
    the insert on PostgreSQL, so nothing slips in between).
    """
    body, client_id = protocol.parse_message({"body": body, "client_id": client_id})
    connection = connections[Message.objects.db]
    # One PostgreSQL statement needs no transaction of its own. Several do, and
    # inside a caller's transaction a savepoint keeps a refused insert from
    # spoiling it.
    alone = connection.vendor == "postgresql" and not connection.in_atomic_block
    try:
        # Insert first: a resend is rare, so looking the client_id up only after
        # the unique constraint refused the row saves a query on every send.
        with nullcontext() if alone else transaction.atomic():
            message, inbox_unread = _insert_message(
                connection, conversation=conversation, sender=sender, body=body, client_id=client_id
            )
    except IntegrityError:
        # A resend, or the same client_id racing in from another tab: answer
        # with the stored one.
        existing = _stored(conversation, sender, [client_id]).get(client_id) if client_id is not None else None
        if existing is None:
            raise
        return SendResult(message=existing, created=False)
    return SendResult(message=message, created=True, inbox_unread=inbox_unread)


# A batch of one sender's messages in one statement: the rows go in in the
# batch's order (ids ascend with it), a client_id already stored (or repeated
# within the batch) is skipped rather than failing the batch, and the first
# row says whether the sender may post at all.
_STORE_MESSAGES_POSTGRES_SQL = f"""
    WITH allowed AS (
        SELECT {selectors.POSTING_ALLOWED_SQL} AS ok
    ), stored AS (
        INSERT INTO {Message._meta.db_table} (conversation_id, sender_id, body, created_at, client_id)
        SELECT %(conversation)s, %(poster)s, item.body, item.created_at, item.client_id
        FROM unnest(%(bodies)s::text[], %(client_ids)s::text[], %(created_ats)s::timestamptz[])
            WITH ORDINALITY AS item(body, client_id, created_at, n)
        WHERE (SELECT ok FROM allowed)
        ORDER BY item.n
        ON CONFLICT (conversation_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, client_id
    ), touched AS (
        UPDATE {Conversation._meta.db_table} SET last_message_at = %(last_created_at)s
        WHERE id = %(conversation)s AND EXISTS (SELECT 1 FROM stored)
    )
    SELECT allowed.ok, stored.id, stored.client_id,
           CASE WHEN %(peer)s::bigint IS NULL THEN NULL ELSE ({selectors.INBOX_UNREAD_SQL}) END
    FROM allowed LEFT JOIN stored ON true
    ORDER BY stored.id
"""


def stores_batches_in_one_statement() -> bool:
    """Whether ``message_store_many`` stores a batch with one statement here (PostgreSQL)."""
    connection = connections[Message.objects.db]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def message_store_many(
    *, sender: Any, conversation: Conversation, items: list[tuple[str, str | None]]
) -> list[SendResult | Exception]:
    """Store one sender's (body, client_id) batch in order, as ``message_store`` would each.

    On PostgreSQL outside a transaction it is one statement, atomic on its own;
    elsewhere one ``message_store`` per item. Raises ``PostingRefused``
    (nothing stored) when the sender may not post, and ``protocol.ProtocolError``
    (nothing stored) for an item the protocol refuses. An item whose client_id
    was already stored but could not be read back is the exception that says why.
    """
    items = [protocol.parse_message({"body": body, "client_id": client_id}) for body, client_id in items]
    if not stores_batches_in_one_statement():
        return [
            message_store(sender=sender, conversation=conversation, body=body, client_id=client_id)
            for body, client_id in items
        ]
    connection = connections[Message.objects.db]
    created_ats = [timezone.now() for _ in items]
    params = {
        **_poster_params(conversation, sender),
        "bodies": [body for body, _ in items],
        "client_ids": [client_id for _, client_id in items],
        "created_ats": created_ats,
        "last_created_at": created_ats[-1],
    }
    with connection.cursor() as cursor:
        cursor.execute(_STORE_MESSAGES_POSTGRES_SQL, params)
        rows = cursor.fetchall()
    if not rows[0][0]:
        raise PostingRefused
    stored = [(pk, client_id, unread_before) for _, pk, client_id, unread_before in rows if pk is not None]
    results: list[SendResult | Exception | None] = []
    created = 0
    for (body, client_id), created_at in zip(items, created_ats, strict=True):
        # Rows come back in the batch's order; an item whose client_id does not
        # come next was skipped as already stored (None here, looked up below).
        if not stored or stored[0][1] != client_id:
            results.append(None)
            continue
        pk, _, unread_before = stored.pop(0)
        created += 1
        message = _built_message(connection, conversation, sender, pk, body, created_at, client_id)
        # The statement's snapshot counted none of the batch's rows.
        inbox_unread = None if unread_before is None else unread_before + created
        results.append(SendResult(message=message, created=True, inbox_unread=inbox_unread))
    resent = [client_id for (_, client_id), result in zip(items, results, strict=True) if result is None]
    if not resent:
        return results
    # The batch is committed: a failure to read the resent ones back is
    # theirs alone, never the stored ones'.
    try:
        existing, lookup_error = _stored(conversation, sender, resent), None
    except Exception as error:
        existing, lookup_error = {}, error
    for index, ((_, client_id), result) in enumerate(zip(items, results, strict=True)):
        if result is None:
            message = existing.get(client_id)
            results[index] = (
                SendResult(message=message, created=False)
                if message is not None
                else lookup_error or IntegrityError(f"message {client_id!r} was neither stored nor found")
            )
    return results


def message_events(
    *,
    message: Message,
    conversation: Conversation,
    exclude_channel: str | None = None,
    inbox_unread: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The (group, event) pairs that announce a committed message: the conversation's
    ``message`` frame first, then for a DM the recipient's ``inbox`` total.

    ``exclude_channel`` is the sending socket, which acknowledges by itself;
    ``inbox_unread`` is the total when the store already counted it.
    """
    payload = protocol.message_dict(message)
    events = [
        (
            conversation_group(conversation),
            protocol.relay_event(
                protocol.message_frame(payload),
                sender=message.sender_id,
                seq=message.pk,
                exclude_channel=exclude_channel,
            ),
        )
    ]
    if conversation.kind == Conversation.Kind.DIRECT:
        recipient_id = direct_peer_id(conversation=conversation, user_id=message.sender_id)
        unread = inbox_unread if inbox_unread is not None else selectors.inbox_unread_count(user_id=recipient_id)
        events.append(
            (user_group(recipient_id), protocol.relay_event(protocol.inbox_frame(unread, conversation.pk, payload)))
        )
    return events


def _posting_refused(sender: Any, conversation: Conversation) -> PostingRefused:
    """Why the store refused the sender (read after the refusal, so it says the current reason)."""
    rights = selectors.posting_rights(
        conversation_id=conversation.pk, user_id=sender.pk, peer_id=_poster_params(conversation, sender)["peer"]
    )
    return PostingRefused(*(rights.refusal() or (protocol.CLOSE_FORBIDDEN, "you may not post here")))


def _messages_store(
    sender: Any, conversation: Conversation, items: list[tuple[str, str | None]], exclude_channel: str | None
) -> list[SendResult | Exception]:
    """Store a batch in order: per item its result (with the events that announce it) or why it failed.

    On PostgreSQL a batch is one statement. Elsewhere each message is its
    own; a refusal ends the batch and another failure answers only its own item.
    """
    if len(items) > 1 and stores_batches_in_one_statement():
        try:
            outcomes = message_store_many(sender=sender, conversation=conversation, items=items)
        except PostingRefused:
            return [_posting_refused(sender, conversation)]
        except Exception as error:
            # The statement stored all of the batch or none of it: each item is
            # answered with the error, and a resend with its client_id is
            # answered from the store if it was stored.
            return [error] * len(items)
    else:
        outcomes = []
        for body, client_id in items:
            try:
                outcomes.append(
                    message_store(sender=sender, conversation=conversation, body=body, client_id=client_id)
                )
            except PostingRefused:
                outcomes.append(_posting_refused(sender, conversation))
                break
            except Exception as error:
                outcomes.append(error)
    for outcome in outcomes:
        if isinstance(outcome, SendResult) and outcome.created:
            try:
                outcome.events = message_events(
                    message=outcome.message,
                    conversation=conversation,
                    exclude_channel=exclude_channel,
                    inbox_unread=outcome.inbox_unread,
                )
            except Exception:
                # The row is committed: it stays a success, echoed from the store
                # without a broadcast (the others get it on resume).
                log.exception("announcing message %s failed", outcome.message.pk)
    return outcomes


async def messages_send(
    *, sender: Any, conversation: Conversation, items: list[tuple[str, str | None]], exclude_channel: str | None
) -> list[SendResult | Exception]:
    """Store one sender's parsed (body, client_id) batch and publish it: per item its result or why
    it failed (a ``PostingRefused``, which ends the batch, or the error).

    One database hop stores the batch (one statement on PostgreSQL); the
    publish then goes out from the event loop, after the commit, as one
    ``group_send_many`` for all of it (each message's conversation frame and,
    in a DM, the recipient's inbox total together), so the database thread
    never waits on Redis. ``exclude_channel`` is the sending socket, which
    echoes ``result.events[0]`` itself, in the order it sent.
    """
    try:
        # Not thread-sensitive: sockets' database work runs on a small pool in
        # parallel instead of queueing on one thread behind every other socket.
        outcomes = await database_sync_to_async(_messages_store, thread_sensitive=False)(
            sender, conversation, items, exclude_channel
        )
    except Exception as error:
        log.exception("storing %d messages of user %s failed", len(items), sender.pk)
        return [error] * len(items)
    events = [event for outcome in outcomes if isinstance(outcome, SendResult) for event in outcome.events]
    try:
        delivered = iter(await group_send_many(events) if events else [])
    except Exception:
        # Stored all the same: each is echoed from the store with broadcast false.
        log.exception("publishing %d events failed", len(events))
        delivered = iter([False] * len(events))
    for outcome in outcomes:
        if isinstance(outcome, SendResult) and outcome.events:
            # Whether the conversation's frame (the first) went out.
            outcome.broadcast = [next(delivered) for _ in outcome.events][0]
    return outcomes


@transaction.atomic
def message_send(*, sender: Any, conversation: Conversation, body: str, client_id: str | None) -> SendResult:
    """Store a message and publish it when the transaction commits (for sync callers).

    Sockets use ``message_store`` and publish from the event loop instead.
    """
    result = message_store(sender=sender, conversation=conversation, body=body, client_id=client_id)
    if not result.created:
        return result

    def publish() -> None:
        # Publish only once the row is committed, so a receiver (or a resume) can
        # never see a message that is later rolled back.
        # One hop to the publishing loop (one Redis round trip) for both frames.
        sent = run_sync(group_send_many, message_events(message=result.message, conversation=conversation))
        result.broadcast = sent[0]

    transaction.on_commit(publish, robust=True)
    return result


@transaction.atomic
def read_mark(*, user: Any, conversation: Conversation, message_id: int) -> int | None:
    """Move the user's read marker forward to ``message_id`` (capped at the newest message).

    Returns the new marker, or None when it did not move (never moves back).
    """
    newest = selectors.newest_message_id(conversation_id=conversation.pk)
    if newest is None:
        return None
    target = min(message_id, newest)
    # A conditional UPDATE, so two tabs racing can only ever move the marker forward.
    moved = Membership.objects.filter(conversation=conversation, user=user, last_read_id__lt=target).update(
        last_read_id=target
    )
    if not moved:
        return None
    send_on_commit(
        conversation_group(conversation),
        protocol.relay_event(protocol.read_frame(protocol.user_dict(user), target), sender=user.pk),
    )
    if conversation.kind == Conversation.Kind.DIRECT:
        _inbox_total_on_commit(user.pk, conversation_id=conversation.pk)
    return target


@transaction.atomic
def room_create(*, creator: Any, name: str, slug: str, private: bool) -> Conversation:
    """Create a room with its creator as the first member (IntegrityError when the slug is taken)."""
    room = Conversation.objects.create(
        kind=Conversation.Kind.ROOM, name=name, slug=slug, private=private, created_by=creator
    )
    Membership.objects.create(conversation=room, user=creator)
    return room


def _add_member(conversation: Conversation, user: Any) -> Membership:
    # A new member starts with everything already said marked read.
    newest = selectors.newest_message_id(conversation_id=conversation.pk) or 0
    membership, _ = Membership.objects.get_or_create(
        conversation=conversation, user=user, defaults={"last_read_id": newest}
    )
    return membership


@transaction.atomic
def room_join(*, user: Any, conversation: Conversation) -> Membership:
    """Join a public room (idempotent)."""
    if conversation.kind != Conversation.Kind.ROOM or conversation.private:
        raise ValueError("only public rooms can be joined freely")
    return _add_member(conversation, user)


@transaction.atomic
def room_leave(*, user: Any, conversation: Conversation) -> None:
    """Leave a room; the user's open sockets in it close."""
    if conversation.kind != Conversation.Kind.ROOM:
        raise ValueError("only rooms can be left")
    Membership.objects.filter(conversation=conversation, user=user).delete()
    _access_check_on_commit(user.pk)


class InviteOutcome(StrEnum):
    """What ``room_invite`` did."""

    INVITED = "invited"
    ALREADY_INVITED = "already_invited"
    ALREADY_MEMBER = "already_member"


@transaction.atomic
def room_invite(*, inviter: Any, room: Conversation, invitee: Any) -> InviteOutcome:
    """Invite a user to a private room: a pending invitation and a bell notification, not a membership.

    Inviting a member or someone already invited changes nothing. The invitee
    is not notified when they have blocked the inviter.
    """
    if room.kind != Conversation.Kind.ROOM or not room.private:
        raise ValueError("members are invited to private rooms only")
    if selectors.is_member(conversation_id=room.pk, user_id=invitee.pk):
        return InviteOutcome.ALREADY_MEMBER
    _, created = RoomInvitation.objects.get_or_create(conversation=room, invitee=invitee, defaults={"inviter": inviter})
    if not created:
        return InviteOutcome.ALREADY_INVITED
    if not selectors.has_blocked(blocker_id=invitee.pk, blocked_id=inviter.pk):
        notify(invitee, f"{inviter.username} invited you to “{room.name}”", url=f"/rooms/{room.slug}/", actor=inviter)
    return InviteOutcome.INVITED


@transaction.atomic
def room_invitation_accept(*, user: Any, room: Conversation) -> Membership | None:
    """Turn the user's invitation into a membership; None when they hold neither."""
    # Two tabs accepting at once: the second DELETE waits for the first to
    # commit and finds nothing, and then the membership the first made.
    deleted, _ = RoomInvitation.objects.filter(conversation=room, invitee=user).delete()
    if deleted:
        return _add_member(room, user)
    return Membership.objects.filter(conversation=room, user=user).first()


@transaction.atomic
def room_invitation_decline(*, user: Any, room: Conversation) -> bool:
    """Drop the user's invitation to the room; False when there was none."""
    deleted, _ = RoomInvitation.objects.filter(conversation=room, invitee=user).delete()
    return bool(deleted)


@transaction.atomic
def room_remove(*, conversation: Conversation, user: Any) -> None:
    """Remove a member or a pending invitee from a private room; a member's open sockets in it close at once."""
    if conversation.kind != Conversation.Kind.ROOM or not conversation.private:
        raise ValueError("members are removed from private rooms only")
    if user.pk == conversation.created_by_id:
        raise ValueError("the creator cannot be removed")
    RoomInvitation.objects.filter(conversation=conversation, invitee=user).delete()
    Membership.objects.filter(conversation=conversation, user=user).delete()
    _access_check_on_commit(user.pk)


@transaction.atomic
def block_create(*, blocker: Any, blocked: Any) -> Block:
    """Block a user: no DMs either way, and the blocker sees nothing new from them."""
    if blocker.pk == blocked.pk:
        raise ValueError("you cannot block yourself")
    block, _ = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    _access_check_on_commit(blocker.pk, blocked.pk)
    _inbox_total_on_commit(blocker.pk)
    return block


@transaction.atomic
def block_delete(*, blocker: Any, blocked: Any) -> None:
    """Unblock a user."""
    Block.objects.filter(blocker=blocker, blocked=blocked).delete()
    # The blocker's room sockets reload their blocked set and show the user again.
    _access_check_on_commit(blocker.pk)
    _inbox_total_on_commit(blocker.pk)


def _inbox_total_on_commit(user_id: int, *, conversation_id: int | None = None) -> None:
    # The user's DM unread total changed (messages read, or a block made a
    # sender's messages stop or start counting): counted after the commit.
    send_on_commit(
        user_group(user_id),
        lambda: protocol.relay_event(
            protocol.inbox_frame(selectors.inbox_unread_count(user_id=user_id), conversation_id, None)
        ),
    )


def _lock_member(conversation_id: int, user_id: int) -> None:
    # Serialises one user's presence changes in one room across tabs and server
    # processes, so exactly one tab sees "first in" or "last out". Falls back to
    # the user row once the membership is gone (removed from the room).
    # On SQLite select_for_update is a no-op, but every transaction there begins
    # IMMEDIATE (settings), which serialises writers just the same.
    if not Membership.objects.select_for_update().filter(conversation_id=conversation_id, user_id=user_id).exists():
        list(get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk"))


def _fresh_rows(conversation_id: int, user_id: int) -> Any:
    return selectors.fresh_presence(conversation_id=conversation_id).filter(user_id=user_id)


def _presence_put(conversation_id: int, user_id: int, channel_name: str, seen_at: Any) -> None:
    Presence.objects.update_or_create(
        channel_name=channel_name,
        defaults={"conversation_id": conversation_id, "user_id": user_id, "seen_at": seen_at},
    )


@transaction.atomic
def presence_enter(*, conversation_id: int, user_id: int, channel_name: str) -> int | None:
    """Record one open room socket; the version of the join to announce, or None when the room
    already counts the user in (another tab, or a reconnect within the leave grace period)."""
    _lock_member(conversation_id, user_id)
    # Stale rows (a dead process's) are left for the next heartbeat's sweep,
    # which announces their users' leave.
    _presence_put(conversation_id, user_id, channel_name, timezone.now())
    version = _announce_presence(conversation_id, user_id, online=True)
    if version is None:
        # Back within the grace period: the leave a closed socket scheduled is off.
        PresenceVersion.objects.filter(conversation_id=conversation_id, user_id=user_id, left_at__isnull=False).update(
            left_at=None
        )
    return version


@transaction.atomic
def presence_exit(*, conversation_id: int, user_id: int, channel_name: str) -> bool:
    """Forget one closed room socket; True when it was the user's last, so their leave is due
    after the grace period (``presence_leave_due``)."""
    _lock_member(conversation_id, user_id)
    deleted, _ = Presence.objects.filter(channel_name=channel_name).delete()
    if not deleted or _fresh_rows(conversation_id, user_id).exists():
        return False
    PresenceVersion.objects.filter(conversation_id=conversation_id, user_id=user_id).update(left_at=timezone.now())
    return True


@transaction.atomic
def presence_leave_due(*, conversation_id: int, user_id: int) -> int | None:
    """The grace period after a user's last socket closed is over: the version of the leave to
    announce, or None when they are back (or the leave was already announced)."""
    _lock_member(conversation_id, user_id)
    # The grace runs from the latest close: a timer started by an earlier close
    # (the user came back, then left again) finds it not over and leaves the
    # leave to the later timer.
    if _fresh_rows(conversation_id, user_id).exists() or not PresenceVersion.objects.filter(
        conversation_id=conversation_id, user_id=user_id, left_at__lte=timezone.now() - selectors.leave_grace()
    ).exists():
        return None
    return _announce_presence(conversation_id, user_id, online=False)


@dataclass(frozen=True)
class PresenceBeat:
    """What one room socket's heartbeat found."""

    # This socket's row had been swept as stale (its process stalled past the
    # limit) and it was the user's only one: the room was told they left. The
    # version of the join to announce, else None.
    back: int | None
    # Users whose last socket's process died: (user dict, version of the leave
    # to announce).
    gone: list[tuple[dict[str, Any], int]]


def presence_refresh(*, conversation_id: int, user_id: int, channel_name: str) -> PresenceBeat:
    """Keep an open room socket's presence row fresh (heartbeat) and sweep the room.

    Rows of sockets whose server process died are never deleted by their owner;
    the first heartbeat to find them deletes them and reports the users who are
    now gone, so the caller can announce their ``leave``. Every room socket
    beats, so the usual beat is two statements and no transaction: stamp this
    row, and ask whether the room has stale ones.
    """
    now = timezone.now()
    back = None
    if not Presence.objects.filter(channel_name=channel_name).update(seen_at=now):
        back = presence_enter(conversation_id=conversation_id, user_id=user_id, channel_name=channel_name)
    stale_before = now - timedelta(seconds=settings.REALTIME["PRESENCE_STALE_SECONDS"])
    stale = Presence.objects.filter(conversation_id=conversation_id, seen_at__lt=stale_before)
    # Users whose leave fell due while no process was left to announce it (the
    # one that closed their last socket was killed within the grace period).
    overdue = PresenceVersion.objects.filter(
        conversation_id=conversation_id, online=True, left_at__lt=now - selectors.leave_grace()
    ).exclude(user_id__in=selectors.fresh_presence(conversation_id=conversation_id).values("user_id"))
    gone = _presence_sweep(conversation_id, stale, overdue) if stale.exists() or overdue.exists() else []
    return PresenceBeat(back=back, gone=gone)


@transaction.atomic
def _presence_sweep(conversation_id: int, stale: Any, overdue: Any) -> list[tuple[dict[str, Any], int]]:
    gone: dict[int, int] = {}
    candidates = set(stale.values_list("user_id", flat=True)) | set(overdue.values_list("user_id", flat=True))
    for user_id in sorted(candidates):
        _lock_member(conversation_id, user_id)
        stale.filter(user_id=user_id).delete()
        if _fresh_rows(conversation_id, user_id).exists():
            continue
        # Only the sweeper that flips the announced state announces, so one leave per user.
        version = _announce_presence(conversation_id, user_id, online=False)
        if version is not None:
            gone[user_id] = version
    users = get_user_model().objects.filter(pk__in=gone).order_by("pk")
    return [(protocol.user_dict(user), gone[user.pk]) for user in users]


async def typing_due(*, user: Any, conversation: Conversation) -> bool:
    """True at most once per TYPING_INTERVAL_SECONDS per user and conversation, over every tab
    and process (SET NX in Redis when configured: atomic, so one tab wins). Checked before
    anything else, so the frames a typist's tabs send meanwhile cost no database query."""
    interval = settings.REALTIME["TYPING_INTERVAL_SECONDS"]
    return await limits.first_within(f"typing:{conversation.pk}:{user.pk}", interval)


async def typing_publish(*, user: Any, conversation: Conversation) -> None:
    """Tell the conversation's other sockets that ``user`` is typing."""
    event = protocol.relay_event(protocol.typing_frame(protocol.user_dict(user)), exclude_user=user.pk, sender=user.pk)
    await group_send(conversation_group(conversation), event)


# Leaves waiting out their grace period (the loop keeps only weak references to tasks).
_leaving: set[asyncio.Task[None]] = set()


async def _announce(conversation: Conversation, frame: Any, version: int, *, to_self: bool = False) -> None:
    """Publish a user's join or leave to the room's sockets (``to_self``: the user's own too)."""
    user_id = frame["user"]["id"]
    event = protocol.relay_event(
        frame,
        exclude_user=None if to_self else user_id,
        sender=user_id,
        presence=frame["type"],
        presence_version=version,
    )
    await group_send(conversation_group(conversation), event)


async def presence_joined(*, conversation: Conversation, user: Any, channel_name: str) -> None:
    """A room socket opened: record it, and announce the user's join when it is news to the room."""
    version = await database_sync_to_async(presence_enter)(
        conversation_id=conversation.pk, user_id=user.pk, channel_name=channel_name
    )
    if version is not None:
        await _announce(conversation, protocol.join_frame(protocol.user_dict(user)), version)


async def presence_beat(*, conversation: Conversation, user: Any, channel_name: str) -> None:
    """A room socket's heartbeat: keep its row fresh, and announce what the sweep found."""
    beat = await database_sync_to_async(presence_refresh)(
        conversation_id=conversation.pk, user_id=user.pk, channel_name=channel_name
    )
    if beat.back is not None:
        # Every socket in the room, this user's own included, was told they left.
        await _announce(conversation, protocol.join_frame(protocol.user_dict(user)), beat.back, to_self=True)
    for gone_user, version in beat.gone:
        await _announce(conversation, protocol.leave_frame(gone_user), version)


async def presence_left(*, conversation: Conversation, user: Any, channel_name: str) -> None:
    """A room socket closed: forget it; when it was the user's last, announce the leave after
    the grace period unless they are back by then.

    The wait outlives the socket; if this process dies first, a heartbeat
    sweep elsewhere announces the overdue leave.
    """
    last = await database_sync_to_async(presence_exit)(
        conversation_id=conversation.pk, user_id=user.pk, channel_name=channel_name
    )
    if last:
        task = asyncio.create_task(_leave_after_grace(conversation, user))
        _leaving.add(task)
        task.add_done_callback(_leaving.discard)


async def _leave_after_grace(conversation: Conversation, user: Any) -> None:
    await asyncio.sleep(selectors.leave_grace().total_seconds())
    try:
        version = await database_sync_to_async(presence_leave_due)(conversation_id=conversation.pk, user_id=user.pk)
        if version is not None:
            await _announce(conversation, protocol.leave_frame(protocol.user_dict(user)), version)
    except Exception:
        log.warning("announcing the leave of user %s failed; the sweep will", user.pk, exc_info=True)


_PRESENCE_TABLE = PresenceVersion._meta.db_table
# The join: from "not announced" (or no row yet) to online, with the next number.
_ANNOUNCE_JOIN_SQL = f"""
    INSERT INTO {_PRESENCE_TABLE} (conversation_id, user_id, version, online, left_at) VALUES (%s, %s, 1, TRUE, NULL)
    ON CONFLICT (conversation_id, user_id) DO UPDATE
        SET version = {_PRESENCE_TABLE}.version + 1, online = TRUE, left_at = NULL
        WHERE NOT {_PRESENCE_TABLE}.online
    RETURNING version
"""
# The leave: only from online.
_ANNOUNCE_LEAVE_SQL = f"""
    UPDATE {_PRESENCE_TABLE} SET version = version + 1, online = FALSE, left_at = NULL
    WHERE conversation_id = %s AND user_id = %s AND online
    RETURNING version
"""


def _announce_presence(conversation_id: int, user_id: int, *, online: bool) -> int | None:
    """Record that the room is told the user joined (or left): the announcement's version, or
    None when the room already has it that way.

    Called under _lock_member, so one user's announcements in one room are
    numbered in the order they are decided, across processes; a join or
    leave that changes nothing announces nothing (so connect/close churn
    within the grace period costs the room no frames).
    """
    with connections[PresenceVersion.objects.db].cursor() as cursor:
        cursor.execute(_ANNOUNCE_JOIN_SQL if online else _ANNOUNCE_LEAVE_SQL, [conversation_id, user_id])
        row = cursor.fetchone()
    return row[0] if row else None
