"""A year of data for PostgreSQL, generated inside the database: ``python -m bench.yeardata large|small``.

Run with the app's environment (``DATABASE_URL`` of a migrated, empty database). Every row comes
from ``INSERT ... SELECT`` over ``generate_series`` with ids and choices computed from the row
number and ``--seed`` through ``hashint8``, so a seed always gives the same database (no client
round trip per row; the large shape takes a few minutes on 2 cores). Then ``VACUUM ANALYZE``,
as autovacuum would have done over the year.

Shapes (``SHAPES``): *large* is the issue's year, 1,000,000 messages over 10,000 conversations
(one room of 2,000 members with 200,000 of them, one direct pair with 50,000) and 1,000,000
notifications over 5,000 users. *small* is the same at 1/100, except what the measured operations
are made of, which stays the same size in both so that only the data around them grows: the heavy
user (user 1) is in 500 conversations and has 5,000 unread notifications in both.

Prints one JSON line: the shape, row counts, the subjects' ids and seconds taken.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

Json = dict[str, Any]
HEAVY_USER = 1
DM_PEER = 2
ROOM_ID = 1
DM_ID = 2
# Members of each room other than the big one.
SMALL_ROOM_MEMBERS = 8


@dataclass(frozen=True)
class Shape:
    """Row counts of one database size."""

    users: int
    conversations: int
    messages: int
    room_members: int
    room_messages: int
    dm_messages: int
    notifications: int
    heavy_notifications: int
    heavy_unread: int
    # The heavy user's conversations: the room, the big pair, and direct pairs with users 3...
    heavy_conversations: int = 500


SHAPES = {
    "large": Shape(
        users=5000,
        conversations=10_000,
        messages=1_000_000,
        room_members=2000,
        room_messages=200_000,
        dm_messages=50_000,
        notifications=1_000_000,
        heavy_notifications=100_000,
        heavy_unread=5000,
    ),
    "small": Shape(
        users=600,
        conversations=600,
        messages=10_000,
        room_members=20,
        room_messages=2000,
        dm_messages=500,
        notifications=10_000,
        heavy_notifications=6000,
        heavy_unread=5000,
    ),
}


def h(expr: str, seed: int, salt: int) -> str:
    """SQL for a deterministic non-negative pseudo-random integer from ``expr``."""
    return f"abs(hashint8(({expr})::bigint * 7919 + {seed * 1000 + salt})::bigint)"


def statements(shape: Shape, seed: int) -> list[tuple[str, str]]:
    """(label, SQL) in order; the SQL only uses the shape's numbers and the seed."""
    s = shape
    start = "now() - interval '365 days'"
    year_s = 365 * 86400
    others_from = s.heavy_conversations + 1  # first conversation not of the heavy user
    n_other_users = s.users - 2  # users 3..U take part in the other conversations

    # Conversation c >= others_from: a room when c % 10 == 0, else the pair number k = c - others_from
    # (x, x + d) over users 3..U, which is unique while d stays under half of them.
    def pair_a(c: str) -> str:
        return f"3 + ({c} - {others_from}) % {n_other_users}"

    def pair_b(c: str) -> str:
        k = f"({c} - {others_from})"
        return f"3 + ({k} % {n_other_users} + 1 + {k} / {n_other_users}) % {n_other_users}"

    def room_member(c: str, j: str) -> str:
        return f"3 + ({c} * 37 + {j} * 101) % {n_other_users}"

    # Message i: 1 in 5 in the big room, 1 in 20 in the big pair, the rest spread over the others.
    room_every = s.messages // s.room_messages
    dm_every = s.messages // s.dm_messages
    conv_of = (
        f"CASE WHEN i % {room_every} = 0 THEN {ROOM_ID} WHEN i % {dm_every} = 1 THEN {DM_ID}"
        f" ELSE 3 + {h('i', seed, 1)} % {s.conversations - 2} END"
    )
    # Notification i is the heavy user's when i * share crosses a whole number: exactly their count.
    heavy_rank = f"(i::bigint * {s.heavy_notifications}) / {s.notifications}"
    heavy_pick = f"{heavy_rank} > ((i - 1)::bigint * {s.heavy_notifications}) / {s.notifications}"
    others = f"generate_series({others_from}, {s.conversations})"
    notified_others = min(s.users, 5000) - 1  # everybody else's notifications go to users 2..5000
    return [
        (
            "users",
            f"""INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email,
                                       is_staff, is_active, date_joined)
                SELECT u, '!', false, 'year' || lpad(u::text, 6, '0'), '', '', '', false, true, {start}
                FROM generate_series(1, {s.users}) u""",
        ),
        (
            "conversations",
            f"""INSERT INTO dm_conversation (id, kind, direct_key, slug, name, private, created_at, created_by_id)
                SELECT c,
                       CASE WHEN c = {ROOM_ID} OR (c >= {others_from} AND c % 10 = 0) THEN 'room' ELSE 'direct' END,
                       CASE WHEN c = {ROOM_ID} OR (c >= {others_from} AND c % 10 = 0) THEN NULL
                            WHEN c = {DM_ID} THEN '{HEAVY_USER}:{DM_PEER}'
                            WHEN c <= {s.heavy_conversations} THEN '{HEAVY_USER}:' || c
                            ELSE least({pair_a("c")}, {pair_b("c")}) || ':'
                                 || greatest({pair_a("c")}, {pair_b("c")}) END,
                       CASE WHEN c = {ROOM_ID} THEN 'year-room'
                            WHEN c >= {others_from} AND c % 10 = 0 THEN 'year-room-' || c END,
                       CASE WHEN c = {ROOM_ID} THEN 'Year room' WHEN c >= {others_from} AND c % 10 = 0
                            THEN 'Year room ' || c ELSE '' END,
                       false, {start}, {HEAVY_USER}
                FROM generate_series(1, {s.conversations}) c""",
        ),
        (
            "memberships",
            f"""INSERT INTO dm_membership (conversation_id, user_id, last_read_id, joined_at, muted, emailed_up_to)
                SELECT conversation_id, user_id, last_read_id, joined_at, false, 0 FROM (
                SELECT {ROOM_ID} AS conversation_id, u AS user_id, 0 AS last_read_id, {start} AS joined_at
                FROM generate_series(1, {s.room_members}) u
                UNION ALL SELECT {DM_ID}, {HEAVY_USER}, 0, {start} UNION ALL SELECT {DM_ID}, {DM_PEER}, 0, {start}
                UNION ALL SELECT c, {HEAVY_USER}, 0, {start} FROM generate_series(3, {s.heavy_conversations}) c
                UNION ALL SELECT c, c, 0, {start} FROM generate_series(3, {s.heavy_conversations}) c
                UNION ALL SELECT c, u, 0, {start} FROM (
                    SELECT c, {pair_a("c")} AS u FROM {others} c WHERE c % 10 <> 0
                    UNION SELECT c, {pair_b("c")} FROM {others} c WHERE c % 10 <> 0
                    UNION SELECT c, {room_member("c", "j")} FROM {others} c,
                                 generate_series(0, {SMALL_ROOM_MEMBERS - 1}) j WHERE c % 10 = 0
                ) pairs) memberships""",
        ),
        (
            "messages",
            f"""INSERT INTO dm_message (id, version, deleted, reactions, conversation_id, sender_id, body, created_at)
                SELECT i, i, false, '[]'::jsonb, conv, CASE
                         WHEN conv = {ROOM_ID} THEN 1 + {h("i", seed, 2)} % {s.room_members}
                         WHEN conv = {DM_ID} THEN CASE WHEN i % 2 = 0 THEN {HEAVY_USER} ELSE {DM_PEER} END
                         WHEN conv <= {s.heavy_conversations} THEN CASE WHEN i % 2 = 0 THEN {HEAVY_USER} ELSE conv END
                         WHEN conv % 10 = 0 THEN {room_member("conv", f"{h('i', seed, 3)} % {SMALL_ROOM_MEMBERS}")}
                         WHEN i % 2 = 0 THEN {pair_a("conv")} ELSE {pair_b("conv")} END,
                       'Message ' || i || ' of the year, about ' || md5(i::text),
                       {start} + make_interval(secs => i * {year_s / s.messages})
                FROM (SELECT i, {conv_of} AS conv FROM generate_series(1, {s.messages}) i) m""",
        ),
        (
            "last_message_at",
            """UPDATE dm_conversation c SET last_message_at = m.newest
               FROM (SELECT conversation_id, max(created_at) AS newest FROM dm_message GROUP BY conversation_id) m
               WHERE m.conversation_id = c.id""",
        ),
        (
            "read markers",
            # Most members have read everything; one membership in ten is 1-5 messages behind, and the
            # big room's members up to a few hundred behind (the heavy user 20).
            f"""UPDATE dm_membership mb SET last_read_id = coalesce(r.id, 0)
                FROM (SELECT mb2.id AS mid,
                             (SELECT m.id FROM dm_message m WHERE m.conversation_id = mb2.conversation_id
                              ORDER BY m.id DESC OFFSET CASE
                                WHEN mb2.conversation_id = {ROOM_ID} AND mb2.user_id = {HEAVY_USER} THEN 20
                                WHEN mb2.conversation_id = {ROOM_ID} THEN {h("mb2.user_id", seed, 4)} % 300
                                WHEN {h("mb2.id", seed, 5)} % 10 = 0 THEN 1 + {h("mb2.id", seed, 6)} % 5
                                ELSE 0 END LIMIT 1) AS id
                      FROM dm_membership mb2) r
                WHERE r.mid = mb.id""",
        ),
        (
            "notifications",
            f"""INSERT INTO notifications_notification (id, count, actors, replaces, group_key,
                                                       recipient_id, kind, text, url, created_at, read_at)
                SELECT i, 1, '[]'::jsonb, '[]'::jsonb, '',
                       CASE WHEN {heavy_pick} THEN {HEAVY_USER} ELSE 2 + {h("i", seed, 7)} % {notified_others} END,
                       'system', 'Notification ' || i || ' of the year', '',
                       {start} + make_interval(secs => i * {year_s / s.notifications}),
                       CASE WHEN {heavy_pick} AND {heavy_rank} > {s.heavy_notifications - s.heavy_unread} THEN NULL
                            WHEN NOT {heavy_pick} AND i > {s.notifications * 95 // 100} AND {h("i", seed, 8)} % 2 = 0
                            THEN NULL
                            ELSE {start} + make_interval(secs => i * {year_s / s.notifications} + 3600) END
                FROM generate_series(1, {s.notifications}) i""",
        ),
    ]


SEQUENCED = ("auth_user", "dm_conversation", "dm_membership", "dm_message", "notifications_notification")


def generate(shape_name: str, seed: int) -> Json:
    """Fill the (empty, migrated) database with one shape; return counts and subjects."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench.yeardata needs PostgreSQL (DATABASE_URL=postgres://...)")
    shape = SHAPES[shape_name]
    timings: Json = {}
    t0 = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM dm_message")
        if cursor.fetchone()[0]:
            raise SystemExit("bench.yeardata: the database already holds messages; give it an empty one")
        for label, sql in statements(shape, seed):
            t = time.monotonic()
            cursor.execute(sql)
            timings[label] = round(time.monotonic() - t, 1)
            print(f"  {label}: {timings[label]} s", file=sys.stderr, flush=True)
        for table in SEQUENCED:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    t = time.monotonic()
    with connection.cursor() as cursor:
        for table in ("auth_user", "dm_conversation", "dm_membership", "dm_message", "notifications_notification"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        counts = {}
        for table in SEQUENCED:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE read_at IS NULL), count(*) FROM notifications_notification"
            f" WHERE recipient_id = {HEAVY_USER}"
        )
        heavy_unread, heavy_total = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM dm_membership WHERE user_id = {HEAVY_USER}")
        heavy_conversations = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM dm_message WHERE conversation_id IN ({ROOM_ID}, {DM_ID})"
            " GROUP BY conversation_id ORDER BY conversation_id"
        )
        room_messages, dm_messages = (row[0] for row in cursor.fetchall())
    timings["vacuum analyze"] = round(time.monotonic() - t, 1)
    return {
        "shape": shape_name,
        "seed": seed,
        "params": asdict(shape),
        "counts": counts,
        "heavy_user": {
            "id": HEAVY_USER,
            "notifications": heavy_total,
            "unread": heavy_unread,
            "conversations": heavy_conversations,
        },
        "room": {"id": ROOM_ID, "slug": "year-room", "messages": room_messages},
        "dm": {"id": DM_ID, "peer": DM_PEER, "messages": dm_messages},
        "timings_s": timings,
        "seconds": round(time.monotonic() - t0, 1),
    }


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.yeardata", description=__doc__)
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    print(json.dumps(generate(args.shape, args.seed)))


if __name__ == "__main__":
    main()
