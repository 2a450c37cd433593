"""The message version counter: one place for how versions are numbered.

Ids and versions come from one counter, the message table's id sequence: a
new message's version is its id, and every change of a message takes the next
number. So a client that has seen up to version V has seen exactly the
messages with id <= V (``?since=`` relies on it), and both only grow.

Every writer takes the conversation's row lock before it takes a number and
holds it until its commit, so within a conversation numbers are committed in
the order they were taken: a resume from "the highest I have seen" can never
skip a row that commits later with a lower number (which two unlocked writers
could do, each with a number from the sequence, committing in the other order).
"""

from __future__ import annotations

from typing import Any

from dm import selectors
from dm.models import Conversation, Message

_MESSAGE = Message._meta.db_table
_CONVERSATION = Conversation._meta.db_table

# PostgreSQL: the id column's own sequence, in the statement that needs the
# number (no extra round trip).
NEXT_VERSION_POSTGRES_SQL = f"nextval(pg_get_serial_sequence('{_MESSAGE}', 'id'))"


def lock_conversation_sql(condition: str = "TRUE") -> str:
    """The conversation row lock every numbering statement takes first (when ``condition`` holds)."""
    return f"SELECT id FROM {_CONVERSATION} WHERE id = %(conversation)s AND ({condition}) FOR NO KEY UPDATE"

# SQLite: the AUTOINCREMENT counter of the table, which the next insert's id
# also comes from. Its writers are serialised by the database lock (every
# transaction begins IMMEDIATE), which is the lock above there.
_NEXT_VERSION_SQLITE_SQL = f"UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = '{_MESSAGE}' RETURNING seq"


def lock_conversation(connection: Any, conversation_id: int, *, poster: int, peer: int | None) -> bool:
    """Take the conversation's row lock for the rest of the transaction (see the module docstring)
    if ``poster`` may write to it (``peer``: the other user of a DM); False (no lock) if not.

    The posting rule is checked under the lock, so a removal or block that
    commits first is seen, and one that comes later waits for this change.
    """
    params = {"conversation": conversation_id, "poster": poster, "peer": peer}
    if connection.vendor != "postgresql":
        return selectors.posting_rights(conversation_id=conversation_id, user_id=poster, peer_id=peer).allowed
    with connection.cursor() as cursor:
        cursor.execute(lock_conversation_sql(selectors.POSTING_ALLOWED_SQL), params)
        return cursor.fetchone() is not None


def restamp(connection: Any, message_ids: list[int]) -> dict[int, int]:
    """Give each message a new version, in id order: ``{id: version}``.

    Call under ``lock_conversation`` in the transaction that changes them.
    """
    if not message_ids:
        return {}
    ordered = sorted(message_ids)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {_MESSAGE} m SET version = v.version FROM ("
                f" SELECT id, {NEXT_VERSION_POSTGRES_SQL} AS version FROM"
                f" (SELECT unnest(%s::bigint[]) AS id ORDER BY 1) ids) v"
                " WHERE m.id = v.id RETURNING m.id, m.version",
                [ordered],
            )
            return dict(cursor.fetchall())
        stamped = {}
        for message_id in ordered:
            cursor.execute(_NEXT_VERSION_SQLITE_SQL)
            stamped[message_id] = cursor.fetchone()[0]
            cursor.execute(f"UPDATE {_MESSAGE} SET version = %s WHERE id = %s", [stamped[message_id], message_id])
        return stamped
