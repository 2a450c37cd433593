"""Reads of the messaging app: history, unread counts, markers, presence, rooms, invitations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from dm.models import Block, Conversation, Membership, Message, Presence, PresenceVersion, RoomInvitation
from notifications.services import mentioned_user_ids
from social.db.rows import WireUser, all_rows, converted_rows, db_time, first_column, first_instance, one_row
from social.realtime import protocol

# The reads below run on every message, every socket connect and every frame a
# chat socket acts on, so they are written in SQL (``social.db.rows``): building the
# same queries through the ORM cost 0.5-4 ms of CPU each on the benchmark machine,
# the SQL itself 0.1-0.7 ms (docs/benchmarks.md). Table and column names come from the models.
_MESSAGE, _MEMBERSHIP = Message._meta.db_table, Membership._meta.db_table
_CONVERSATION, _BLOCK = Conversation._meta.db_table, Block._meta.db_table
_USER = get_user_model()._meta.db_table
_PRESENCE, _PRESENCE_VERSION = Presence._meta.db_table, PresenceVersion._meta.db_table

# Users ``reader`` has blocked: their messages neither count as unread nor show as the last message.
_BLOCKED_BY_READER_SQL = f"(SELECT blocked_id FROM {_BLOCK} WHERE blocker_id = %(reader)s)"
# The unread rule, the one place it is written: a message ``m`` is unread for
# ``reader`` (membership ``mb``) when it is past their read marker, not their
# own, not deleted, and not from someone they have blocked.
_UNREAD_SQL = f"""m.id > mb.last_read_id AND m.sender_id <> %(reader)s AND NOT m.deleted
      AND m.sender_id NOT IN {_BLOCKED_BY_READER_SQL}"""
# The reader's unread messages in one of their conversations (membership ``mb``):
# a correlated subquery, so each conversation is counted from its
# ``(conversation, id)`` index past the marker, whatever its size or the
# table's. A join over all the reader's conversations let the planner read
# every message of each (the year-of-data bench: 140 ms instead of 2 ms).
_UNREAD_IN_MEMBERSHIP_SQL = (
    f"(SELECT COUNT(*) FROM {_MESSAGE} m WHERE m.conversation_id = mb.conversation_id AND {_UNREAD_SQL})"
)
# The reader's unread direct messages over all their DMs they have not muted (the bell's inbox total).
# The kind is a primary-key probe per membership, not a join that scans every conversation;
# the cast keeps PostgreSQL's SUM an integer (it is NUMERIC).
INBOX_UNREAD_SQL = f"""
    SELECT CAST(COALESCE(SUM({_UNREAD_IN_MEMBERSHIP_SQL}), 0) AS BIGINT) FROM {_MEMBERSHIP} mb
    WHERE mb.user_id = %(reader)s AND NOT mb.muted
      AND (SELECT c.kind FROM {_CONVERSATION} c WHERE c.id = mb.conversation_id) = '{Conversation.Kind.DIRECT.value}'
"""
# 1 when a new message in ``conversation`` raises ``reader``'s inbox total (they have not muted it), else 0.
INBOX_COUNTS_NEW_SQL = f"""(SELECT COUNT(*) FROM {_MEMBERSHIP}
    WHERE conversation_id = %(conversation)s AND user_id = %(reader)s AND NOT muted)"""

# Whether ``poster`` is a member of ``conversation``, and whether a block
# stands between ``poster`` and ``peer`` (the other user of a DM; NULL in a
# room, where the comparison is never true).
_IS_MEMBER_SQL = f"""EXISTS(SELECT 1 FROM {_MEMBERSHIP}
                            WHERE conversation_id = %(conversation)s AND user_id = %(poster)s)"""
_IS_BLOCKED_SQL = f"""EXISTS(SELECT 1 FROM {_BLOCK} WHERE (blocker_id = %(poster)s AND blocked_id = %(peer)s)
                                             OR (blocker_id = %(peer)s AND blocked_id = %(poster)s))"""
# Whether ``poster``'s account is active: checked with every frame that acts, so
# an account deactivated by any path (a bulk ``update()`` sends no signal) stops
# posting at its next frame, at the cost of one primary-key probe in a query
# that runs anyway.
_IS_ACTIVE_SQL = f"EXISTS(SELECT 1 FROM {_USER} WHERE id = %(poster)s AND is_active)"
# True while ``poster`` may write to ``conversation``.
POSTING_ALLOWED_SQL = f"{_IS_ACTIVE_SQL} AND {_IS_MEMBER_SQL} AND NOT {_IS_BLOCKED_SQL}"
_POSTING_RIGHTS_SQL = f"SELECT {_IS_ACTIVE_SQL}, {_IS_MEMBER_SQL}, {_IS_BLOCKED_SQL}"
# Every member's name and read marker.
_READ_MARKERS_SQL = f"""SELECT u.username, mb.last_read_id FROM {_MEMBERSHIP} mb JOIN {_USER} u ON u.id = mb.user_id
    WHERE mb.conversation_id = %(conversation)s"""
# Who a room counts in (``room_online``): announced online, with a presence row seen since
# ``fresh_since`` or a leave after ``left_since`` (still within the grace period).
_ROOM_ONLINE_SQL = f"""
    SELECT u.id, u.username FROM {_USER} u WHERE u.id IN (
        SELECT pv.user_id FROM {_PRESENCE_VERSION} pv
        WHERE pv.conversation_id = %(room)s AND pv.online
          AND (pv.left_at >= %(left_since)s
               OR pv.user_id IN (SELECT p.user_id FROM {_PRESENCE} p
                                 WHERE p.conversation_id = %(room)s AND p.seen_at >= %(fresh_since)s)))
    ORDER BY u.username
"""
# The rooms ``user`` is a member of (the bell follows each room's group).
_ROOM_IDS_SQL = f"""SELECT mb.conversation_id FROM {_MEMBERSHIP} mb JOIN {_CONVERSATION} c ON c.id = mb.conversation_id
    WHERE mb.user_id = %(user)s AND c.kind = '{Conversation.Kind.ROOM.value}'"""


def room_posting_allowed_sql(poster: str) -> str:
    """The posting rule for a room (no peer, so no block applies) with ``poster`` an SQL
    expression, for statements that store several senders' messages at once."""
    return POSTING_ALLOWED_SQL.replace("%(poster)s", poster).replace("%(peer)s", "NULL")


def inbox_unread_count(*, user_id: int) -> int:
    """Unread direct messages of the user, over all their direct conversations.

    Messages from users they have blocked do not count. Each conversation is
    counted from its ``(conversation, id)`` index past the marker, so the cost
    follows the user's unread messages and conversations, not the table.
    """
    return one_row(INBOX_UNREAD_SQL, {"reader": user_id})[0]


def muted_member_ids(*, conversation_id: int) -> frozenset[int]:
    """Ids of the members who muted the conversation (no mention notifications, no email for them)."""
    return frozenset(
        Membership.objects.filter(conversation_id=conversation_id, muted=True).values_list("user_id", flat=True)
    )


def is_muted(*, conversation_id: int, user_id: int) -> bool:
    """True when the user is a member who muted the conversation."""
    return Membership.objects.filter(conversation_id=conversation_id, user_id=user_id, muted=True).exists()


def direct_is_muted(*, user_id: int, peer_id: int) -> bool:
    """True when the user muted their direct conversation with ``peer_id`` (False before it exists)."""
    return Membership.objects.filter(
        user_id=user_id,
        muted=True,
        conversation__kind=Conversation.Kind.DIRECT,
        conversation__memberships__user_id=peer_id,
    ).exists()


def blocked_ids(*, user_id: int) -> frozenset[int]:
    """Ids of the users this user has blocked."""
    return frozenset(first_column(f"SELECT blocked_id FROM {_BLOCK} WHERE blocker_id = %(user)s", {"user": user_id}))


def blocked_between(*, user_a_id: int, user_b_id: int) -> bool:
    """True when either user has blocked the other."""
    return bool(one_row(f"SELECT {_IS_BLOCKED_SQL}", {"poster": user_a_id, "peer": user_b_id})[0])


def has_blocked(*, blocker_id: int, blocked_id: int) -> bool:
    """True when ``blocker_id`` has blocked ``blocked_id``."""
    return Block.objects.filter(blocker_id=blocker_id, blocked_id=blocked_id).exists()


@dataclass(frozen=True)
class PostingRights:
    """What decides whether a user may write to a conversation right now."""

    active: bool
    member: bool
    blocked: bool

    @property
    def allowed(self) -> bool:
        """True when every condition holds."""
        return self.active and self.member and not self.blocked

    def refusal(self) -> tuple[int, str] | None:
        """(close code, reason) when the user may not write, else None: the one wording of each refusal."""
        if not self.active:
            return protocol.CLOSE_NOT_LOGGED_IN, "this account is deactivated"
        if not self.member:
            return protocol.CLOSE_FORBIDDEN, "you are not a member of this conversation"
        if self.blocked:
            return protocol.CLOSE_FORBIDDEN, "messages between you and this user are blocked"
        return None


def posting_rights(*, conversation_id: int, user_id: int, peer_id: int | None) -> PostingRights:
    """Account active, member, blocked from/by ``peer_id``: in one query."""
    params = {"conversation": conversation_id, "poster": user_id, "peer": peer_id}
    active, member, blocked = one_row(_POSTING_RIGHTS_SQL, params)
    return PostingRights(active=bool(active), member=bool(member), blocked=bool(blocked))


def room_ids(*, user_id: int) -> list[int]:
    """Ids of the rooms the user is a member of."""
    return first_column(_ROOM_IDS_SQL, {"user": user_id})


def membership(*, conversation_id: int, user_id: int) -> Membership | None:
    """The user's membership of the conversation, or None."""
    return first_instance(
        Membership, "conversation_id = %(c)s AND user_id = %(u)s", {"c": conversation_id, "u": user_id}
    )


def room_by_slug(*, slug: str) -> Conversation | None:
    """The room with this slug, or None."""
    where = f"kind = '{Conversation.Kind.ROOM.value}' AND slug = %(slug)s"
    return first_instance(Conversation, where, {"slug": slug})


def direct_conversation(*, key: str) -> Conversation | None:
    """The direct conversation of the pair ``key`` (``services.direct_key``), or None."""
    return first_instance(Conversation, "direct_key = %(key)s", {"key": key})


def active_user(*, username: str) -> Any | None:
    """The active user named ``username``, or None."""
    return first_instance(get_user_model(), "username = %(name)s AND is_active", {"name": username})


def is_member(*, conversation_id: int, user_id: int) -> bool:
    """True when the user belongs to the conversation."""
    return Membership.objects.filter(conversation_id=conversation_id, user_id=user_id).exists()


@dataclass(slots=True)
class WireMessage:
    """A message (or the one it answers) as ``protocol.message_dict`` reads it, from one row."""

    pk: int
    conversation_id: int
    sender: WireUser
    body: str
    created_at: Any = None
    client_id: str | None = None
    version: int = 0
    edited_at: Any = None
    deleted: bool = False
    reactions: Any = None
    reply_to_id: int | None = None
    reply_to: WireMessage | None = None


# What protocol.message_dict reads of a message ``m``: its columns, its sender's name, and the
# message it answers with that one's sender (``answered``, NULL for a message that answers
# none). Every message page, replay and conversation list entry reads these 16 columns.
_WIRE_MESSAGE_COLUMNS = """m.id, m.conversation_id, m.sender_id, sender.username, m.body, m.created_at, m.client_id,
           m.version, m.edited_at, m.deleted, m.reactions,
           m.reply_to_id, answered.sender_id, answered_sender.username, answered.body, answered.deleted"""
_WIRE_MESSAGE_JOINS = f"""LEFT JOIN {_USER} sender ON sender.id = m.sender_id
    LEFT JOIN {_MESSAGE} answered ON answered.id = m.reply_to_id
    LEFT JOIN {_USER} answered_sender ON answered_sender.id = answered.sender_id"""
# Those of the columns above that the database returns in its own form (SQLite: text
# datetimes, 0/1 booleans; both: JSON as text), by position, with the field that reads them.
_WIRE_MESSAGE_FIELDS = {
    5: Message._meta.get_field("created_at"),
    8: Message._meta.get_field("edited_at"),
    9: Message._meta.get_field("deleted"),
    10: Message._meta.get_field("reactions"),
    15: Message._meta.get_field("deleted"),
}
# One page of a conversation's messages, newest first along ``order`` (``id`` or ``version``),
# read backwards from the matching (conversation, …) index.
_MESSAGE_PAGE_SQL = f"""
    SELECT {_WIRE_MESSAGE_COLUMNS} FROM {_MESSAGE} m {_WIRE_MESSAGE_JOINS}
    WHERE m.conversation_id = %(conversation)s {{bound}} {{hidden}}
    ORDER BY m.{{order}} DESC LIMIT %(limit)s
"""


def _message_page(
    conversation_id: int, hidden_senders: frozenset[int], *, order: str, bound: str, limit: int, **params: Any
) -> tuple[list[WireMessage], bool]:
    """Up to ``limit`` messages matching ``bound`` (SQL on ``m``), newest first along ``order``, oldest
    first in the result; and whether older ones were cut."""
    hidden = {f"hidden{i}": user_id for i, user_id in enumerate(sorted(hidden_senders))}
    sql = _MESSAGE_PAGE_SQL.format(
        order=order,
        bound=bound,
        hidden=f"AND m.sender_id NOT IN ({', '.join(f'%({name})s' for name in hidden)})" if hidden else "",
    )
    rows = converted_rows(
        sql, {"conversation": conversation_id, "limit": limit + 1, **params, **hidden}, _WIRE_MESSAGE_FIELDS
    )
    return [_wire_message(row) for row in rows[:limit][::-1]], len(rows) > limit


def _wire_message(row: list[Any], start: int = 0) -> WireMessage:
    """The message whose ``_WIRE_MESSAGE_COLUMNS`` start at ``start`` in a row."""
    (
        message_id,
        conversation_id,
        sender_id,
        sender_name,
        body,
        created_at,
        client_id,
        version,
        edited_at,
        deleted,
        reactions,
        reply_to_id,
        answered_sender_id,
        answered_sender_name,
        answered_body,
        answered_deleted,
    ) = row[start : start + 16]
    answered = None
    if reply_to_id is not None:
        answered = WireMessage(
            pk=reply_to_id,
            conversation_id=conversation_id,
            sender=WireUser(answered_sender_id, answered_sender_name),
            body=answered_body,
            deleted=answered_deleted,
        )
    return WireMessage(
        pk=message_id,
        conversation_id=conversation_id,
        sender=WireUser(sender_id, sender_name),
        body=body,
        created_at=created_at,
        client_id=client_id,
        version=version,
        edited_at=edited_at,
        deleted=deleted,
        reactions=reactions,
        reply_to_id=reply_to_id,
        reply_to=answered,
    )


def messages_before(
    *, conversation_id: int, before_id: int | None, limit: int, hidden_senders: frozenset[int] = frozenset()
) -> tuple[list[WireMessage], bool]:
    """One page of history older than ``before_id`` (newest page when None): (oldest first, has_more)."""
    bound = "" if before_id is None else "AND m.id < %(before)s"
    return _message_page(conversation_id, hidden_senders, order="id", bound=bound, limit=limit, before=before_id)


def messages_after(
    *, conversation_id: int, after_id: int, limit: int, hidden_senders: frozenset[int] = frozenset()
) -> tuple[list[WireMessage], bool]:
    """The newest ``limit`` messages with id > ``after_id``, oldest first, and whether older ones were cut."""
    bound = "AND m.id > %(after)s"
    return _message_page(conversation_id, hidden_senders, order="id", bound=bound, limit=limit, after=after_id)


def messages_since(
    *, conversation_id: int, since_version: int, limit: int, hidden_senders: frozenset[int] = frozenset()
) -> tuple[list[WireMessage], bool]:
    """Every message whose version is greater than ``since_version``, in its current state, in
    version order: the newest ``limit`` of them, and whether older ones were cut."""
    bound = "AND m.version > %(since)s"
    return _message_page(
        conversation_id, hidden_senders, order="version", bound=bound, limit=limit, since=since_version
    )


def mention_recipients(*, conversation_id: int, sender_id: int, text: str) -> list[int]:
    """Ids of the members an ``@username`` in the sender's message names: not the sender, not
    someone who blocked the sender, not someone who muted the conversation."""
    named = mentioned_user_ids(text) - {sender_id}
    if not named:
        return []
    blockers = Block.objects.filter(blocked_id=sender_id).values("blocker_id")
    members = Membership.objects.filter(conversation_id=conversation_id, user_id__in=named, muted=False).exclude(
        user_id__in=blockers
    )
    return sorted(members.values_list("user_id", flat=True))


def newest_version(*, conversation_id: int) -> int:
    """The highest message version in the conversation (0 when it has no messages)."""
    return Message.objects.filter(conversation_id=conversation_id).aggregate(newest=Max("version"))["newest"] or 0


def newest_message_id(*, conversation_id: int) -> int | None:
    """Id of the conversation's newest message (None when it has none)."""
    return Message.objects.filter(conversation_id=conversation_id).aggregate(newest=Max("id"))["newest"]


def read_markers(*, conversation_id: int) -> dict[str, int]:
    """``{username: last_read_id}`` for every member."""
    return dict(all_rows(_READ_MARKERS_SQL, {"conversation": conversation_id}))


def leave_grace() -> timedelta:
    """How long after a user's last socket in a room closed the room still counts them in."""
    return timedelta(milliseconds=settings.REALTIME["PRESENCE_LEAVE_GRACE_MS"])


def stale_before(now: datetime) -> datetime:
    """Presence rows not refreshed since then are stale (their process died): PRESENCE_STALE_SECONDS ago."""
    return now - timedelta(seconds=settings.REALTIME["PRESENCE_STALE_SECONDS"])


def fresh_presence(*, conversation_id: int) -> QuerySet[Presence]:
    """The room's presence rows refreshed within PRESENCE_STALE_SECONDS (a killed process's go stale)."""
    return Presence.objects.filter(conversation_id=conversation_id, seen_at__gte=stale_before(timezone.now()))


def room_online(*, conversation_id: int, hidden_users: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    """Users the room counts in, by username: announced online, and with a fresh presence row
    (any tab, any server process) or their last socket closed within the leave grace period.

    The same state the join and leave announcements follow, so a user who
    reloads while someone enters is listed, and their later leave is news.
    """
    now = timezone.now()
    fresh_since, left_since = db_time(stale_before(now)), db_time(now - leave_grace())
    params = {"room": conversation_id, "fresh_since": fresh_since, "left_since": left_since}
    online = all_rows(_ROOM_ONLINE_SQL, params)
    return [{"id": pk, "username": username} for pk, username in online if pk not in hidden_users]


def presence_versions(*, conversation_id: int) -> dict[int, int]:
    """user id -> the version of the latest join or leave announced for them in the room."""
    sql = f"SELECT user_id, version FROM {_PRESENCE_VERSION} WHERE conversation_id = %s"
    return dict(all_rows(sql, [conversation_id]))


def room_members(*, conversation_id: int, limit: int | None = None) -> list[Any]:
    """Members of a room, by username (the first ``limit`` when given)."""
    members = get_user_model().objects.filter(memberships__conversation_id=conversation_id).order_by("username")
    return list(members[:limit] if limit is not None else members)


def _natural_key(name: str) -> list[Any]:
    """Sort key where "Room 2" comes before "Room 10" and case does not matter."""
    parts = re.split(r"(\d+)", name.casefold())
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts if part]


def rooms_visible(
    *, user_id: int, query: str = "", page: int = 1, per_page: int = 30
) -> tuple[list[Conversation], int]:
    """A page of the visible rooms named like ``query``, in natural order, annotated; and the page count."""
    mine = Membership.objects.filter(user_id=user_id).values("conversation_id")
    rooms = Conversation.objects.filter(kind=Conversation.Kind.ROOM).filter(Q(private=False) | Q(pk__in=mine))
    if query:
        rooms = rooms.filter(name__icontains=query)
    names = sorted(rooms.values_list("pk", "name", "slug"), key=lambda row: (_natural_key(row[1]), row[2]))
    pages = max(1, -(-len(names) // per_page))
    wanted = [row[0] for row in names[(min(page, pages) - 1) * per_page : min(page, pages) * per_page]]
    annotated = Conversation.objects.filter(pk__in=wanted).annotate(
        joined=Count("memberships", filter=Q(memberships__user_id=user_id)),
        member_count=Count("memberships", distinct=True),
    )
    by_pk = {room.pk: room for room in annotated}
    return [by_pk[pk] for pk in wanted], pages


# The user's conversations with all an inbox entry shows, in one statement. Per membership
# (the inner query, fenced on PostgreSQL so that its probes run once per membership and not
# again inside the joins) the other member of a direct pair and the newest message not from
# someone the reader blocked, read backwards from the (conversation, id) index. Then that
# message, its sender and the message it answers, and the unread count, only counted where
# that newest message is past the reader's marker (else nothing can be unread).
# Through the ORM the same took three queries, 1,000 model instances and ~20 ms for a user
# in 500 conversations, ~11 ms of it Python (docs/benchmarks.md, sixth pass).
_CONVERSATION_LIST_SQL = f"""
    SELECT mb.conversation_id, mb.kind, mb.name, mb.slug, mb.muted,
           CASE WHEN mb.last_id > mb.last_read_id THEN {_UNREAD_IN_MEMBERSHIP_SQL} ELSE 0 END,
           mb.peer, {_WIRE_MESSAGE_COLUMNS}
    FROM (
        SELECT own.conversation_id, own.last_read_id, own.muted,
               c.kind, c.name, c.slug, c.last_message_at, c.created_at,
               CASE WHEN c.kind = '{Conversation.Kind.DIRECT.value}' THEN
                   (SELECT u.username FROM {_MEMBERSHIP} other JOIN {_USER} u ON u.id = other.user_id
                    WHERE other.conversation_id = own.conversation_id AND other.user_id <> %(reader)s LIMIT 1)
               END AS peer,
               (SELECT newest.id FROM {_MESSAGE} newest
                WHERE newest.conversation_id = own.conversation_id
                  AND newest.sender_id NOT IN {_BLOCKED_BY_READER_SQL}
                ORDER BY newest.id DESC LIMIT 1) AS last_id
        FROM {_MEMBERSHIP} own JOIN {_CONVERSATION} c ON c.id = own.conversation_id
        WHERE own.user_id = %(reader)s
          AND NOT (c.kind = '{Conversation.Kind.DIRECT.value}' AND c.last_message_at IS NULL) {{fence}}
    ) mb
    LEFT JOIN {_MESSAGE} m ON m.id = mb.last_id
    {_WIRE_MESSAGE_JOINS}
    ORDER BY mb.last_message_at DESC NULLS LAST, mb.created_at DESC
"""
# PostgreSQL flattens a plain derived table into the joins and then runs the newest-message
# probe twice per row (once to find the message, once more under a Memoize); OFFSET 0 keeps
# the inner query whole. SQLite needs no fence and has no bare OFFSET.
_SUBQUERY_FENCE = {"postgresql": "OFFSET 0"}
# The columns of the statement above that need the ORM's reading: the membership's muted flag,
# then the message's (its columns start at position 7).
_LIST_MESSAGE_START = 7
_CONVERSATION_LIST_FIELDS = {
    4: Membership._meta.get_field("muted"),
    **{_LIST_MESSAGE_START + position: field for position, field in _WIRE_MESSAGE_FIELDS.items()},
}


def conversation_list(*, user_id: int) -> list[protocol.ConversationEntry]:
    """The user's conversations, most recent activity first, as PROTOCOL.md's inbox entries.

    Direct conversations without any message yet are left out; messages from
    users they have blocked neither count as unread nor show as the last message.
    """
    sql = _CONVERSATION_LIST_SQL.format(fence=_SUBQUERY_FENCE.get(connection.vendor, ""))
    results = []
    for row in converted_rows(sql, {"reader": user_id}, _CONVERSATION_LIST_FIELDS):
        conversation_id, kind, name, slug, muted, unread, peer_name, message_id = row[:8]
        if kind == Conversation.Kind.DIRECT:
            title = peer_name or ""
            url = f"/messages/{title}/"
        else:
            title = name or slug
            url = f"/rooms/{slug}/"
        results.append(
            protocol.conversation_entry(
                conversation_id=conversation_id,
                kind=kind,
                title=title,
                url=url,
                unread=unread,
                last_message=protocol.message_dict(_wire_message(row, _LIST_MESSAGE_START)) if message_id else None,
                muted=muted,
            )
        )
    return results


def room_member_or_invitee(*, conversation_id: int, username: str) -> Any | None:
    """The member or pending invitee of a room named ``username``, or None."""
    in_room = Q(memberships__conversation_id=conversation_id) | Q(room_invitations__conversation_id=conversation_id)
    return get_user_model().objects.filter(in_room, username=username).distinct().first()


def room_invitees(*, conversation_id: int) -> list[Any]:
    """Users with a pending invitation to a room, by username."""
    return list(get_user_model().objects.filter(room_invitations__conversation_id=conversation_id).order_by("username"))


def room_invitation(*, conversation_id: int, user_id: int) -> RoomInvitation | None:
    """The user's pending invitation to a room (with its inviter), or None."""
    return (
        RoomInvitation.objects.select_related("inviter")
        .filter(conversation_id=conversation_id, invitee_id=user_id)
        .first()
    )
