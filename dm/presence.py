"""What one room socket's client knows about who is online, and which announcements are news to it.

An announcement published just before a socket joined the room's group can
still reach it after its ``ready`` listed the outcome, and one from another
process can arrive after a newer one (a sweeper's ``leave`` after the swept
user's ``join``). Each announcement carries the user's presence version: an
old one is dropped, and so is one that says what the client already shows,
so the client sees each user join once and leave once, in turn, ending in
their real state. No database: the consumer feeds it what ``ready`` read.
"""

from __future__ import annotations


class PresenceView:
    """The online set a room socket's client was told, and the newest version seen per user."""

    def __init__(self) -> None:
        self.online: frozenset[int] = frozenset()
        self.seen: dict[int, int] = {}

    def reset(self, *, online: frozenset[int], versions: dict[int, int]) -> None:
        """What ``ready`` told the client (versions read before the online list, so an
        announcement decided between the two reads is not dropped for being old)."""
        self.online = online
        self.seen = dict(versions)

    def is_news(self, *, presence: str, user_id: int, version: int | None) -> bool:
        """Whether a ``join`` or ``leave`` of ``user_id`` changes what the client shows (and note it)."""
        if version is not None:
            if version <= self.seen.get(user_id, 0):
                return False
            self.seen[user_id] = version
        if (presence == "join") == (user_id in self.online):
            return False
        self.online ^= {user_id}
        return True
