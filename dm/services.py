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
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from dm import selectors, versions
from dm.models import Block, Conversation, Membership, Message, Presence, PresenceVersion, RoomInvitation
from notifications.models import Notification
from notifications.services import notify, notify_many
from social.db.rows import db_time
from social.realtime import limits, protocol
from social.realtime.groups import control_group, direct_group, room_group, user_group
from social.realtime.publish import group_send, group_send_many, group_send_many_sync, send_on_commit

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


def conversation_event(conversation: Conversation, frame: Any, *, bell: bool = False, **fields: Any) -> Any:
    """The relay event of a frame for the conversation's group.

    A room's events say which room they are from, because its members' bell
    sockets listen on the room's group too: they take only the events marked
    ``bell`` (new messages) and drop the rest (typing, reads, presence, changes).
    """
    if conversation.kind == Conversation.Kind.ROOM:
        fields.update(room=conversation.pk, bell=bell)
    return protocol.relay_event(frame, **fields)


def _access_check_on_commit(*user_ids: int) -> None:
    # Sockets cache who may talk where; make every socket of these users re-check
    # once the change is visible to them, so removed or blocked users are cut off at once.
    for user_id in user_ids:
        send_on_commit(control_group(user_id), protocol.access_check_event())


def direct_conversation_get_or_create(*, user_a: Any, user_b: Any) -> Conversation:
    """The direct conversation of a pair with both memberships, created on first use."""
    key = direct_key(user_a.pk, user_b.pk)
    # Every DM socket's connect runs this: finding the pair's conversation opens no transaction.
    conversation = selectors.direct_conversation(key=key)
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
    found = Message.objects.select_related("sender", "reply_to__sender").filter(
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
    reply_to: Message | None,
) -> Message:
    """The Message a store just inserted, without reading it back (its version is its id)."""
    columns = {
        "id": pk,
        "conversation_id": conversation.pk,
        "sender_id": sender.pk,
        "body": body,
        "created_at": created_at,
        "client_id": client_id,
        "version": pk,
        "edited_at": None,
        "deleted": False,
        "reply_to_id": reply_to.pk if reply_to else None,
        "reactions": [],
    }
    # from_db takes every column, in the model's order.
    message = Message.from_db(connection.alias, _MODEL_COLUMNS, [columns[name] for name in _MODEL_COLUMNS])
    message.sender = sender
    message.reply_to = reply_to
    return message


# The insert and the conversation's activity stamp run on every message, so
# they are SQL rather than ORM calls (1.3 ms of query building each on the
# benchmark machine; see selectors for the reads). A new message's version is
# its id (dm.versions); the other columns start as the model's defaults.
_MESSAGE = Message._meta.db_table
_MESSAGE_COLUMNS = ["id", "version", "conversation_id", "sender_id", "body", "created_at", "client_id", "reply_to_id"]
_MODEL_COLUMNS = [field.attname for field in Message._meta.concrete_fields]
_NEW_MESSAGE_COLUMNS = f"{', '.join(_MESSAGE_COLUMNS)}, edited_at, deleted, reactions"
_INSERT_MESSAGE_SQL = (
    f"INSERT INTO {_MESSAGE} ({_NEW_MESSAGE_COLUMNS.removeprefix('id, ')}) VALUES (0, %(conversation)s,"
    " %(poster)s, %(body)s, %(created_at)s, %(client_id)s, %(reply_to)s, NULL, FALSE, '[]')"
)
_STAMP_VERSION_SQL = f"UPDATE {_MESSAGE} SET version = id WHERE id = %s"
_TOUCH_CONVERSATION_SQL = (
    f"UPDATE {Conversation._meta.db_table} SET last_message_at = %(created_at)s WHERE id = %(conversation)s"
)
# PostgreSQL does it all in one statement, atomic on its own (no BEGIN and
# COMMIT round trips): the conversation's lock, only while the sender may
# post; then the number (dm.versions: taken under the lock, so numbers commit
# in order); the insert; the stamp; and in a DM the recipient's unread total,
# which the statement's snapshot counts without the new message, hence + 1
# (+ 0 when they muted the DM).
_STORE_MESSAGE_POSTGRES_SQL = f"""
    WITH locked AS (
        {versions.lock_conversation_sql(selectors.POSTING_ALLOWED_SQL)}
    ), numbered AS (
        SELECT {versions.NEXT_VERSION_POSTGRES_SQL} AS n FROM locked
    ), stored AS (
        INSERT INTO {_MESSAGE} ({_NEW_MESSAGE_COLUMNS})
        SELECT n, n, %(conversation)s, %(poster)s, %(body)s, %(created_at)s, %(client_id)s, %(reply_to)s,
               NULL, FALSE, '[]'
        FROM numbered
        RETURNING id
    ), touched AS (
        {_TOUCH_CONVERSATION_SQL} AND EXISTS (SELECT 1 FROM stored)
    )
    SELECT id, CASE WHEN %(peer)s::bigint IS NULL THEN NULL
                    ELSE ({selectors.INBOX_UNREAD_SQL}) + {selectors.INBOX_COUNTS_NEW_SQL} END
    FROM stored
"""


class PostingRefused(Exception):
    """The sender may not post to the conversation (deactivated, not a member, or blocked).

    ``close_code`` and the message say why, for the socket that tried.
    """

    def __init__(self, close_code: int = protocol.CLOSE_FORBIDDEN, message: str = "you may not post here") -> None:
        super().__init__(message)
        self.close_code = close_code


def _insert_message(
    connection: Any,
    *,
    conversation: Conversation,
    sender: Any,
    body: str,
    client_id: str | None,
    reply_to: Message | None,
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
        "reply_to": reply_to.pk if reply_to else None,
    }
    insert = _insert_message_postgres if connection.vendor == "postgresql" else _insert_message_portable
    pk, inbox_unread = insert(connection, params)
    message = _built_message(connection, conversation, sender, pk, body, created_at, client_id, reply_to)
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
    """The same as four statements (the caller's transaction makes them atomic, and on SQLite
    serialises them: dm.versions); the unread total is counted after the commit by ``message_events``."""
    rights = selectors.posting_rights(
        conversation_id=params["conversation"], user_id=params["poster"], peer_id=params["peer"]
    )
    if not rights.allowed:
        raise PostingRefused
    returning = connection.features.can_return_columns_from_insert
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_MESSAGE_SQL + (" RETURNING id" if returning else ""), params)
        pk = cursor.fetchone()[0] if returning else cursor.lastrowid
        cursor.execute(_STAMP_VERSION_SQL, [pk])
        cursor.execute(_TOUCH_CONVERSATION_SQL, params)
    return pk, None


def message_store(
    *, sender: Any, conversation: Conversation, body: str, client_id: str | None, reply_to: Message | None = None
) -> SendResult:
    """Store a message without publishing it; a repeated client_id returns the stored message.

    Raises ``protocol.ProtocolError`` for a body or client_id the protocol
    refuses, and ``PostingRefused`` when the sender is not a member or, in a
    DM, either user has blocked the other (checked in the same statement as
    the insert on PostgreSQL, so nothing slips in between). ``reply_to`` is
    a message of this conversation (``reply_targets`` finds them).
    """
    draft = protocol.parse_message({"body": body, "client_id": client_id})
    body, client_id = draft.body, draft.client_id
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
                connection, conversation=conversation, sender=sender, body=body, client_id=client_id, reply_to=reply_to
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
# batch's order (ids ascend with it, numbered under the conversation's lock),
# a client_id already stored (or repeated within the batch) is skipped rather
# than failing the batch, and the first row says whether the sender may post at all.
_STORE_MESSAGES_POSTGRES_SQL = f"""
    WITH allowed AS (
        SELECT {selectors.POSTING_ALLOWED_SQL} AS ok
    ), locked AS (
        {versions.lock_conversation_sql('SELECT ok FROM allowed')}
    ), numbered AS (
        SELECT {versions.NEXT_VERSION_POSTGRES_SQL} AS n, item.body, item.client_id, item.created_at, item.reply_to
        FROM (
            SELECT * FROM unnest(%(bodies)s::text[], %(client_ids)s::text[], %(created_ats)s::timestamptz[],
                                 %(reply_tos)s::bigint[])
                WITH ORDINALITY AS item(body, client_id, created_at, reply_to, position)
            WHERE EXISTS (SELECT 1 FROM locked)
            ORDER BY item.position
        ) item
    ), stored AS (
        INSERT INTO {_MESSAGE} ({_NEW_MESSAGE_COLUMNS})
        SELECT n, n, %(conversation)s, %(poster)s, body, created_at, client_id, reply_to, NULL, FALSE, '[]'
        FROM numbered
        ORDER BY n
        ON CONFLICT (conversation_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, client_id
    ), touched AS (
        UPDATE {Conversation._meta.db_table} SET last_message_at = %(last_created_at)s
        WHERE id = %(conversation)s AND EXISTS (SELECT 1 FROM stored)
    )
    SELECT allowed.ok, stored.id, stored.client_id,
           CASE WHEN %(peer)s::bigint IS NULL THEN NULL ELSE ({selectors.INBOX_UNREAD_SQL}) END,
           {selectors.INBOX_COUNTS_NEW_SQL}
    FROM allowed LEFT JOIN stored ON true
    ORDER BY stored.id
"""


def stores_batches_in_one_statement() -> bool:
    """Whether ``message_store_many`` stores a batch with one statement here (PostgreSQL)."""
    connection = connections[Message.objects.db]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def message_store_many(
    *,
    sender: Any,
    conversation: Conversation,
    items: list[tuple[str, str | None]],
    replies: list[Message | None] | None = None,
) -> list[SendResult | Exception]:
    """Store one sender's (body, client_id) batch in order, as ``message_store`` would each
    (``replies``: per item the message it answers, or None).

    On PostgreSQL outside a transaction it is one statement, atomic on its own;
    elsewhere one ``message_store`` per item. Raises ``PostingRefused``
    (nothing stored) when the sender may not post, and ``protocol.ProtocolError``
    (nothing stored) for an item the protocol refuses. An item whose client_id
    was already stored but could not be read back is the exception that says why.
    """
    drafts = [protocol.parse_message({"body": body, "client_id": client_id}) for body, client_id in items]
    items = [(draft.body, draft.client_id) for draft in drafts]
    replies = replies or [None] * len(items)
    if not stores_batches_in_one_statement():
        return [
            message_store(sender=sender, conversation=conversation, body=body, client_id=client_id, reply_to=reply)
            for (body, client_id), reply in zip(items, replies, strict=True)
        ]
    connection = connections[Message.objects.db]
    created_ats = [timezone.now() for _ in items]
    params = {
        **_poster_params(conversation, sender),
        "bodies": [body for body, _ in items],
        "client_ids": [client_id for _, client_id in items],
        "created_ats": created_ats,
        "reply_tos": [reply.pk if reply else None for reply in replies],
        "last_created_at": created_ats[-1],
    }
    with connection.cursor() as cursor:
        cursor.execute(_STORE_MESSAGES_POSTGRES_SQL, params)
        rows = cursor.fetchall()
    if not rows[0][0]:
        raise PostingRefused
    stored = [(pk, client_id, unread_before) for _, pk, client_id, unread_before, _ in rows if pk is not None]
    # Each stored message raises a DM recipient's total unless they muted the DM.
    counts_new = rows[0][4]
    results: list[SendResult | Exception | None] = []
    created = 0
    for (body, client_id), created_at, reply in zip(items, created_ats, replies, strict=True):
        # Rows come back in the batch's order; an item whose client_id does not
        # come next was skipped as already stored (None here, looked up below).
        if not stored or stored[0][1] != client_id:
            results.append(None)
            continue
        pk, _, unread_before = stored.pop(0)
        created += 1
        message = _built_message(connection, conversation, sender, pk, body, created_at, client_id, reply)
        # The statement's snapshot counted none of the batch's rows.
        inbox_unread = None if unread_before is None else unread_before + created * counts_new
        results.append(SendResult(message=message, created=True, inbox_unread=inbox_unread))
    return _resent_from_store(conversation, sender, [client_id for _, client_id in items], results)


def _resent_from_store(
    conversation: Conversation, sender: Any, client_ids: list[str | None], results: list[Any]
) -> list[SendResult | Exception]:
    """Answer the items a batch statement skipped as already stored (None in ``results``)
    with the stored message."""
    resent = [client_id for client_id, result in zip(client_ids, results, strict=True) if result is None]
    if not resent:
        return results
    # The batch is committed: a failure to read the resent ones back is
    # theirs alone, never the stored ones'.
    try:
        existing, lookup_error = _stored(conversation, sender, resent), None
    except Exception as error:
        existing, lookup_error = {}, error
    answered: list[SendResult | Exception] = []
    for client_id, result in zip(client_ids, results, strict=True):
        if result is None:
            message = existing.get(client_id)
            result = (
                SendResult(message=message, created=False)
                if message is not None
                else lookup_error or IntegrityError(f"message {client_id!r} was neither stored nor found")
            )
        answered.append(result)
    return answered


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
            conversation_event(
                conversation,
                protocol.message_frame(payload),
                bell=True,
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


def posting_refusal(sender: Any, conversation: Conversation) -> PostingRefused:
    """Why a write of the sender was refused (read after the refusal, so it says the current reason)."""
    rights = selectors.posting_rights(
        conversation_id=conversation.pk, user_id=sender.pk, peer_id=_poster_params(conversation, sender)["peer"]
    )
    return PostingRefused(*(rights.refusal() or (protocol.CLOSE_FORBIDDEN, "you may not post here")))


_NOT_A_REPLY_TARGET = "reply_to is not a message of this conversation that can be answered"


def reply_targets(conversation: Conversation, drafts: list[protocol.Draft]) -> dict[int, Message]:
    """The messages these drafts answer that may be answered: of this conversation, not deleted."""
    ids = {draft.reply_to for draft in drafts if draft.reply_to is not None}
    if not ids:
        return {}
    found = Message.objects.select_related("sender").filter(conversation=conversation, pk__in=ids, deleted=False)
    return {message.pk: message for message in found}


def _messages_store(
    sender: Any, conversation: Conversation, drafts: list[protocol.Draft], exclude_channel: str | None
) -> list[SendResult | Exception]:
    """Store a batch in order: per item its result (with the events that announce it) or why it failed.

    A reply to a message not in this conversation (or deleted) is ``invalid``
    in its place. On PostgreSQL the rest is one statement. Elsewhere each
    message is its own; a refusal ends the batch and another failure answers
    only its own item.
    """
    targets = reply_targets(conversation, drafts)
    refused = {
        index: protocol.ProtocolError(protocol.INVALID, _NOT_A_REPLY_TARGET, draft.client_id)
        for index, draft in enumerate(drafts)
        if draft.reply_to is not None and draft.reply_to not in targets
    }
    storable = [(index, draft) for index, draft in enumerate(drafts) if index not in refused]
    stored = _store_drafts(sender, conversation, [draft for _, draft in storable], targets) if storable else []
    outcomes: list[SendResult | Exception] = []
    results = iter(zip(storable, stored, strict=False))
    pending = next(results, None)
    for index in range(len(drafts)):
        if index in refused:
            outcomes.append(refused[index])
        elif pending is not None and pending[0][0] == index:
            outcomes.append(pending[1])
            pending = next(results, None)
        # A refusal ended the batch: the items after it are not answered.
    _announce_created(conversation, outcomes, exclude_channel)
    return outcomes


def _store_drafts(
    sender: Any, conversation: Conversation, drafts: list[protocol.Draft], targets: dict[int, Message]
) -> list[SendResult | Exception]:
    """Store drafts in order: a result per draft, or fewer when a refusal (the last) ended the batch."""
    replies = [targets.get(draft.reply_to) if draft.reply_to is not None else None for draft in drafts]
    if len(drafts) > 1 and stores_batches_in_one_statement():
        try:
            return message_store_many(
                sender=sender,
                conversation=conversation,
                items=[(draft.body, draft.client_id) for draft in drafts],
                replies=replies,
            )
        except PostingRefused:
            return [posting_refusal(sender, conversation)]
        except Exception as error:
            # The statement stored all of the batch or none of it: each item is
            # answered with the error, and a resend with its client_id is
            # answered from the store if it was stored.
            return [error] * len(drafts)
    outcomes: list[SendResult | Exception] = []
    for draft, reply in zip(drafts, replies, strict=True):
        try:
            outcomes.append(
                message_store(
                    sender=sender, conversation=conversation, body=draft.body, client_id=draft.client_id, reply_to=reply
                )
            )
        except PostingRefused:
            outcomes.append(posting_refusal(sender, conversation))
            break
        except Exception as error:
            outcomes.append(error)
    return outcomes


def mentions_notify(*, message: Message, conversation: Conversation) -> list[int]:
    """Tell each member named as ``@username`` in a new message, through the bell: one ``mention``
    notification per user per message, not to the sender, a non-member, or someone who blocked
    the sender. A failure is logged: the message is stored either way."""
    if "@" not in message.body:
        return []
    try:
        recipients = selectors.mention_recipients(
            conversation_id=conversation.pk, sender_id=message.sender_id, text=message.body
        )
        if not recipients:
            return []
        sender_name = message.sender.username
        if conversation.kind == Conversation.Kind.DIRECT:
            text, url = f"{sender_name} mentioned you in a direct message", f"/messages/{sender_name}/"
        else:
            text, url = f"{sender_name} mentioned you in “{conversation.name}”", f"/rooms/{conversation.slug}/"
        return notify_many(
            recipients, text, url=f"{url}#message-{message.pk}", actor=message.sender, kind=Notification.Kind.MENTION
        )
    except Exception:
        log.exception("mention notifications for message %s failed", message.pk)
        return []


# Several senders' batches in one room, in one statement: what
# _STORE_MESSAGES_POSTGRES_SQL does for one sender, with the posting rule per
# sender (a sender who may not post stores nothing; the others are unaffected).
_STORE_ROOM_MESSAGES_POSTGRES_SQL = f"""
    WITH items AS (
        SELECT * FROM unnest(%(senders)s::bigint[], %(bodies)s::text[], %(client_ids)s::text[],
                             %(created_ats)s::timestamptz[], %(reply_tos)s::bigint[])
            WITH ORDINALITY AS item(sender, body, client_id, created_at, reply_to, position)
    ), allowed AS (
        SELECT DISTINCT poster.sender FROM unnest(%(posters)s::bigint[]) AS poster(sender)
        WHERE {selectors.room_posting_allowed_sql("poster.sender")}
    ), locked AS (
        {versions.lock_conversation_sql("EXISTS (SELECT 1 FROM allowed)")}
    ), numbered AS (
        SELECT {versions.NEXT_VERSION_POSTGRES_SQL} AS n, item.*
        FROM (
            SELECT * FROM items
            WHERE sender IN (SELECT sender FROM allowed) AND EXISTS (SELECT 1 FROM locked)
            ORDER BY position
        ) item
    ), stored AS (
        INSERT INTO {_MESSAGE} ({_NEW_MESSAGE_COLUMNS})
        SELECT n, n, %(conversation)s, sender, body, created_at, client_id, reply_to, NULL, FALSE, '[]'
        FROM numbered
        ORDER BY n
        ON CONFLICT (conversation_id, sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, sender_id, client_id
    ), touched AS (
        UPDATE {Conversation._meta.db_table} SET last_message_at = %(last_created_at)s
        WHERE id = %(conversation)s AND EXISTS (SELECT 1 FROM stored)
    )
    SELECT sender, NULL, NULL FROM allowed
    UNION ALL
    SELECT sender_id, id, client_id FROM stored
    ORDER BY 2 NULLS FIRST
"""


@dataclass
class Submission:
    """One socket's batch for a room's group commit: its sender, drafts and socket."""

    sender: Any
    drafts: list[protocol.Draft]
    exclude_channel: str | None


def room_messages_store(
    conversation: Conversation, submissions: list[Submission]
) -> list[list[SendResult | Exception]]:
    """Store several sockets' batches in one room, per submission its outcomes as
    ``_messages_store`` gives them (with the events that announce each new message).

    On PostgreSQL outside a transaction it is one statement for all of them, so a
    busy room costs one insert (and, through ``messages_send_many``, one publish) per
    tick instead of one per message; elsewhere each submission is stored on its own.
    """
    if len(submissions) == 1 or not stores_batches_in_one_statement():
        return [_messages_store(s.sender, conversation, s.drafts, s.exclude_channel) for s in submissions]
    all_drafts = [draft for submission in submissions for draft in submission.drafts]
    targets = reply_targets(conversation, all_drafts)
    # A reply to a message it may not answer is invalid in its place; the rest is stored.
    storable: list[list[tuple[protocol.Draft, SendResult | Exception | None]]] = [
        [
            (draft, None)
            if draft.reply_to is None or draft.reply_to in targets
            else (draft, protocol.ProtocolError(protocol.INVALID, _NOT_A_REPLY_TARGET, draft.client_id))
            for draft in submission.drafts
        ]
        for submission in submissions
    ]
    rows = [
        (submission.sender, draft, timezone.now())
        for submission, items in zip(submissions, storable, strict=True)
        for draft, refused in items
        if refused is None
    ]
    params = {
        "conversation": conversation.pk,
        # Every sender of the tick, also one whose drafts were all refused above (not a refusal to post).
        "posters": [submission.sender.pk for submission in submissions],
        "senders": [sender.pk for sender, _, _ in rows],
        "bodies": [draft.body for _, draft, _ in rows],
        "client_ids": [draft.client_id for _, draft, _ in rows],
        "created_ats": [created_at for _, _, created_at in rows],
        "reply_tos": [draft.reply_to for _, draft, _ in rows],
        "last_created_at": rows[-1][2] if rows else timezone.now(),
    }
    connection = connections[Message.objects.db]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_STORE_ROOM_MESSAGES_POSTGRES_SQL, params)
            result_rows = cursor.fetchall()
    except Exception as error:
        # All or nothing: each item is answered with the error (a resend is answered from the store).
        return [[error] * len(submission.drafts) for submission in submissions]
    allowed = {sender for sender, pk, _ in result_rows if pk is None}
    stored: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
    for sender, pk, client_id in result_rows:
        if pk is not None:
            stored[sender].append((pk, client_id))
    created_at_of = {id(draft): created_at for _, draft, created_at in rows}
    outcomes = []
    for submission, items in zip(submissions, storable, strict=True):
        sender = submission.sender
        if sender.pk not in allowed:
            outcomes.append([posting_refusal(sender, conversation)])
            continue
        mine = stored[sender.pk]
        results: list[SendResult | Exception | None] = []
        for draft, refused in items:
            if refused is not None:
                results.append(refused)
            elif mine and mine[0][1] == draft.client_id:
                pk, _ = mine.pop(0)
                reply = targets.get(draft.reply_to) if draft.reply_to is not None else None
                message = _built_message(
                    connection, conversation, sender, pk, draft.body, created_at_of[id(draft)], draft.client_id, reply
                )
                results.append(SendResult(message=message, created=True))
            else:
                results.append(None)
        answered = _resent_from_store(conversation, sender, [draft.client_id for draft, _ in items], results)
        _announce_created(conversation, answered, submission.exclude_channel)
        outcomes.append(answered)
    return outcomes


def _announce_created(
    conversation: Conversation, outcomes: list[SendResult | Exception], exclude_channel: str | None
) -> None:
    """Attach the events that announce each newly stored message, and tell the members it mentions."""
    _requote(outcomes)
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
            mentions_notify(message=outcome.message, conversation=conversation)


def _requote(outcomes: list[SendResult | Exception]) -> None:
    """Quote each new reply's original as it is now that the reply is committed.

    The originals were read before the insert waited for the conversation's
    lock: an edit or delete that committed meanwhile restamped the replies it
    could see, not this one, so its quote is read again here (one query).
    """
    replies = [
        outcome.message
        for outcome in outcomes
        if isinstance(outcome, SendResult) and outcome.created and outcome.message.reply_to_id
    ]
    if not replies:
        return
    originals = Message.objects.select_related("sender").in_bulk([reply.reply_to_id for reply in replies])
    for reply in replies:
        reply.reply_to = originals.get(reply.reply_to_id)
        if reply.reply_to is None:
            reply.reply_to_id = None


async def _publish(outcomes: list[SendResult | Exception]) -> None:
    """Publish the new messages' events in one ``group_send_many`` and note which went out."""
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


async def room_messages_send(
    conversation: Conversation, submissions: list[Submission]
) -> list[list[SendResult | Exception]]:
    """Store several sockets' batches in one room (``room_messages_store``) and publish all of
    them with one ``group_send_many``: the room's sockets get the tick's messages in one write."""
    try:
        outcomes = await database_sync_to_async(room_messages_store, thread_sensitive=False)(
            conversation, submissions
        )
    except Exception as error:
        log.exception("storing a group commit of %d batches failed", len(submissions))
        return [[error] * len(submission.drafts) for submission in submissions]
    await _publish([outcome for batch in outcomes for outcome in batch])
    return outcomes


async def messages_send(
    *, sender: Any, conversation: Conversation, items: list[protocol.Draft], exclude_channel: str | None
) -> list[SendResult | Exception]:
    """Store one sender's parsed batch and publish it: per item its result or why it failed (a
    ``PostingRefused``, which ends the batch, or the error).

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
    await _publish(outcomes)
    return outcomes


@transaction.atomic
def message_send(
    *, sender: Any, conversation: Conversation, body: str, client_id: str | None, reply_to: Message | None = None
) -> SendResult:
    """Store a message, tell the members it mentions, and publish it when the transaction commits
    (for sync callers).

    Sockets use ``messages_send``, which publishes from the event loop instead.
    """
    result = message_store(sender=sender, conversation=conversation, body=body, client_id=client_id, reply_to=reply_to)
    if not result.created:
        return result
    mentions_notify(message=result.message, conversation=conversation)

    def publish() -> None:
        # Publish only once the row is committed, so a receiver (or a resume) can
        # never see a message that is later rolled back.
        # One hop to the publishing loop (one Redis round trip) for both frames.
        sent = group_send_many_sync(message_events(message=result.message, conversation=conversation))
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
        conversation_event(conversation, protocol.read_frame(protocol.user_dict(user), target), sender=user.pk),
    )
    # The reader's bells (every tab) refresh their conversation list: the DM
    # total, or a room's unread mark.
    inbox_total_on_commit(user.pk, conversation_id=conversation.pk)
    return target


@transaction.atomic
def room_create(*, creator: Any, name: str, slug: str, private: bool) -> Conversation:
    """Create a room with its creator as the first member (IntegrityError when the slug is taken)."""
    room = Conversation.objects.create(
        kind=Conversation.Kind.ROOM, name=name, slug=slug, private=private, created_by=creator
    )
    Membership.objects.create(conversation=room, user=creator)
    # The creator's bells start following the room.
    _access_check_on_commit(creator.pk)
    return room


def _add_member(conversation: Conversation, user: Any) -> Membership:
    # Opening a room's socket joins it, so this runs on every connect: a member costs
    # one lookup and no transaction of its own (get_or_create opens one to insert),
    # and only a new member the newest message's id.
    membership = selectors.membership(conversation_id=conversation.pk, user_id=user.pk)
    if membership is not None:
        return membership
    # A new member starts with everything already said marked read.
    newest = selectors.newest_message_id(conversation_id=conversation.pk) or 0
    membership, created = Membership.objects.get_or_create(
        conversation=conversation, user=user, defaults={"last_read_id": newest}
    )
    if created:
        # The new member's bells start following the room.
        _access_check_on_commit(user.pk)
    return membership


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
    inbox_total_on_commit(blocker.pk)
    return block


@transaction.atomic
def block_delete(*, blocker: Any, blocked: Any) -> None:
    """Unblock a user."""
    Block.objects.filter(blocker=blocker, blocked=blocked).delete()
    # The blocker's room sockets reload their blocked set and show the user again.
    _access_check_on_commit(blocker.pk)
    inbox_total_on_commit(blocker.pk)


@transaction.atomic
def conversation_mute_set(*, user: Any, conversation: Conversation, muted: bool) -> bool:
    """Mute or unmute a conversation for one of its members; their inbox total follows at once."""
    changed = Membership.objects.filter(conversation=conversation, user=user).exclude(muted=muted).update(muted=muted)
    if changed and conversation.kind == Conversation.Kind.DIRECT:
        inbox_total_on_commit(user.pk, conversation_id=conversation.pk)
    return muted


def inbox_total_on_commit(user_id: int, *, conversation_id: int | None = None) -> None:
    """Publish the user's direct-message unread total once the transaction commits."""
    # The user's DM unread total changed (messages read, or a block made a
    # sender's messages stop or start counting): counted after the commit.
    send_on_commit(
        user_group(user_id),
        lambda: protocol.relay_event(
            protocol.inbox_frame(selectors.inbox_unread_count(user_id=user_id), conversation_id, None)
        ),
    )


_SOCKET_PRESENCE, _PRESENCE_VERSIONS = Presence._meta.db_table, PresenceVersion._meta.db_table
_MEMBERSHIPS, _USERS = Membership._meta.db_table, get_user_model()._meta.db_table


def _presence_sql(sql: str, params: list[Any]) -> Any:
    """Run one of the presence statements below; its cursor's first row, or its row count when it returns none.

    They run on every room socket's open and close (after a restart, every tab's at once),
    so they are written in SQL: through the ORM each cost ~0.5 ms of CPU to build.
    """
    with connections[Presence.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else cursor.rowcount


# Whether a heartbeat's sweep of the room has work: rows not refreshed since a stale time
# (their process died), or users whose leave fell due while no process was left to announce
# it (the one that closed their last socket was killed within the grace period).
_SWEEP_DUE_SQL = f"""
    SELECT EXISTS(SELECT 1 FROM {_SOCKET_PRESENCE} WHERE conversation_id = %s AND seen_at < %s)
        OR EXISTS(SELECT 1 FROM {_PRESENCE_VERSIONS} pv
                  WHERE pv.conversation_id = %s AND pv.online AND pv.left_at < %s
                    AND pv.user_id NOT IN (SELECT p.user_id FROM {_SOCKET_PRESENCE} p
                                           WHERE p.conversation_id = pv.conversation_id AND p.seen_at >= %s))
"""


def _lock_member(conversation_id: int, user_id: int) -> None:
    # Serialises one user's presence changes in one room across tabs and server
    # processes, so exactly one tab sees "first in" or "last out". Falls back to
    # the user row once the membership is gone (removed from the room).
    # SQLite has no FOR UPDATE, but every transaction there begins IMMEDIATE
    # (settings), which serialises writers just the same.
    lock = " FOR UPDATE" if connections[Presence.objects.db].features.has_select_for_update else ""
    where = "conversation_id = %s AND user_id = %s"
    if _presence_sql(f"SELECT 1 FROM {_MEMBERSHIPS} WHERE {where}{lock}", [conversation_id, user_id]) is None:
        _presence_sql(f"SELECT 1 FROM {_USERS} WHERE id = %s{lock}", [user_id])


def _has_fresh_row(conversation_id: int, user_id: int) -> bool:
    """Whether one of the user's sockets in the room beat within PRESENCE_STALE_SECONDS (any process)."""
    sql = f"SELECT 1 FROM {_SOCKET_PRESENCE} WHERE conversation_id = %s AND user_id = %s AND seen_at >= %s LIMIT 1"
    return _presence_sql(sql, [conversation_id, user_id, db_time(selectors.stale_before(timezone.now()))]) is not None


def _stamp_left_at(conversation_id: int, user_id: int, *, left: bool) -> None:
    """Start the user's leave grace period in the room (``left``), or call it off."""
    where = "conversation_id = %s AND user_id = %s" + ("" if left else " AND left_at IS NOT NULL")
    _presence_sql(
        f"UPDATE {_PRESENCE_VERSIONS} SET left_at = %s WHERE {where}",
        [db_time(timezone.now()) if left else None, conversation_id, user_id],
    )


@transaction.atomic
def presence_enter(*, conversation_id: int, user_id: int, channel_name: str) -> int | None:
    """Record one open room socket; the version of the join to announce, or None when the room
    already counts the user in (another tab, or a reconnect within the leave grace period)."""
    _lock_member(conversation_id, user_id)
    # Stale rows (a dead process's) are left for the next heartbeat's sweep,
    # which announces their users' leave. A socket's channel name is new, so its row is too.
    _presence_sql(
        f"INSERT INTO {_SOCKET_PRESENCE} (conversation_id, user_id, channel_name, seen_at) VALUES (%s, %s, %s, %s)",
        [conversation_id, user_id, channel_name, db_time(timezone.now())],
    )
    version = _announce_presence(conversation_id, user_id, online=True)
    if version is None:
        # Back within the grace period: the leave a closed socket scheduled is off.
        _stamp_left_at(conversation_id, user_id, left=False)
    return version


@transaction.atomic
def presence_exit(*, conversation_id: int, user_id: int, channel_name: str) -> bool:
    """Forget one closed room socket; True when it was the user's last, so their leave is due
    after the grace period (``presence_leave_due``)."""
    _lock_member(conversation_id, user_id)
    deleted = _presence_sql(f"DELETE FROM {_SOCKET_PRESENCE} WHERE channel_name = %s", [channel_name])
    if not deleted or _has_fresh_row(conversation_id, user_id):
        return False
    _stamp_left_at(conversation_id, user_id, left=True)
    return True


@transaction.atomic
def presence_leave_due(*, conversation_id: int, user_id: int) -> int | None:
    """The grace period after a user's last socket closed is over: the version of the leave to
    announce, or None when they are back (or the leave was already announced)."""
    _lock_member(conversation_id, user_id)
    # The grace runs from the latest close: a timer started by an earlier close
    # (the user came back, then left again) finds it not over and leaves the
    # leave to the later timer.
    if _has_fresh_row(conversation_id, user_id) or not PresenceVersion.objects.filter(
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
    stamped = _presence_sql(
        f"UPDATE {_SOCKET_PRESENCE} SET seen_at = %s WHERE channel_name = %s", [db_time(now), channel_name]
    )
    if not stamped:
        back = presence_enter(conversation_id=conversation_id, user_id=user_id, channel_name=channel_name)
    stale_before = selectors.stale_before(now)
    overdue_before = now - selectors.leave_grace()
    stale_at, overdue_at = db_time(stale_before), db_time(overdue_before)
    sweep_params = [conversation_id, stale_at, conversation_id, overdue_at, stale_at]
    sweep_due = _presence_sql(_SWEEP_DUE_SQL, sweep_params)[0]
    if not sweep_due:
        return PresenceBeat(back=back, gone=[])
    stale = Presence.objects.filter(conversation_id=conversation_id, seen_at__lt=stale_before)
    overdue = PresenceVersion.objects.filter(
        conversation_id=conversation_id, online=True, left_at__lt=overdue_before
    ).exclude(user_id__in=selectors.fresh_presence(conversation_id=conversation_id).values("user_id"))
    return PresenceBeat(back=back, gone=_presence_sweep(conversation_id, stale, overdue))


@transaction.atomic
def _presence_sweep(conversation_id: int, stale: Any, overdue: Any) -> list[tuple[dict[str, Any], int]]:
    gone: dict[int, int] = {}
    candidates = set(stale.values_list("user_id", flat=True)) | set(overdue.values_list("user_id", flat=True))
    for user_id in sorted(candidates):
        _lock_member(conversation_id, user_id)
        stale.filter(user_id=user_id).delete()
        if _has_fresh_row(conversation_id, user_id):
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
    event = conversation_event(
        conversation, protocol.typing_frame(protocol.user_dict(user)), exclude_user=user.pk, sender=user.pk
    )
    await group_send(conversation_group(conversation), event)


# Leaves waiting out their grace period (the loop keeps only weak references to tasks).
_leaving: set[asyncio.Task[None]] = set()


async def _announce(conversation: Conversation, frame: Any, version: int, *, to_self: bool = False) -> None:
    """Publish a user's join or leave to the room's sockets (``to_self``: the user's own too)."""
    user_id = frame["user"]["id"]
    event = conversation_event(
        conversation,
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


# The join: from "not announced" (or no row yet) to online, with the next number.
_ANNOUNCE_JOIN_SQL = f"""
    INSERT INTO {_PRESENCE_VERSIONS} (conversation_id, user_id, version, online, left_at) VALUES (%s, %s, 1, TRUE, NULL)
    ON CONFLICT (conversation_id, user_id) DO UPDATE
        SET version = {_PRESENCE_VERSIONS}.version + 1, online = TRUE, left_at = NULL
        WHERE NOT {_PRESENCE_VERSIONS}.online
    RETURNING version
"""
# The leave: only from online.
_ANNOUNCE_LEAVE_SQL = f"""
    UPDATE {_PRESENCE_VERSIONS} SET version = version + 1, online = FALSE, left_at = NULL
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
