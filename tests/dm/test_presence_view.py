"""A room socket's view of who is online, without a database: old and repeated announcements are dropped."""

from dm.presence import PresenceView


def view(online=(), versions=None):
    presence = PresenceView()
    presence.reset(online=frozenset(online), versions=versions or {})
    return presence


def test_a_join_the_ready_list_already_shows_is_dropped():
    presence = view(online={7}, versions={7: 1})
    assert not presence.is_news(presence="join", user_id=7, version=2)
    assert presence.is_news(presence="leave", user_id=7, version=3)
    assert presence.online == frozenset()


def test_an_announcement_older_than_one_seen_is_dropped():
    presence = view(online={7}, versions={7: 4})
    # A sweeper's leave (3) arriving after the user's newer join (4) the ready reflected.
    assert not presence.is_news(presence="leave", user_id=7, version=3)
    assert presence.online == frozenset({7})


def test_each_user_joins_and_leaves_in_turn():
    presence = view()
    events = [("join", 1), ("join", 2), ("leave", 3), ("leave", 4), ("join", 5)]
    news = [presence.is_news(presence=kind, user_id=9, version=version) for kind, version in events]
    assert news == [True, False, True, False, True]
    assert presence.online == frozenset({9})
