"""Services, selectors and access helpers of the messaging app."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from dm import access, selectors, services
from dm.models import Block, Conversation, Membership, Message, Presence, PresenceVersion
from social.realtime.protocol import ProtocolError

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(users):
    return services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def send(users, conversation, name, body="hi", client_id=None):
    return services.message_send(sender=users[name], conversation=conversation, body=body, client_id=client_id)


# Direct conversations.


def test_direct_conversation_is_one_per_pair_in_either_order(users, pair):
    again = services.direct_conversation_get_or_create(user_a=users["bob"], user_b=users["alice"])
    assert again == pair
    assert pair.direct_key == f"{users['alice'].pk}:{users['bob'].pk}"
    assert set(pair.memberships.values_list("user__username", flat=True)) == {"alice", "bob"}


def test_direct_conversation_race_uses_the_winners_row(users, pair):
    # Another request inserted the pair between our lookup and our insert.
    missed = mock.Mock(first=mock.Mock(return_value=None))
    with mock.patch.object(Conversation.objects, "filter", return_value=missed):
        again = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])
    assert again == pair
    assert Conversation.objects.count() == 1


# Messages.


def test_message_send_stores_trimmed_body_and_touches_the_conversation(users, pair):
    result = send(users, pair, "alice", "  hello  ")
    pair.refresh_from_db()
    assert (result.created, result.message.body) == (True, "hello")
    assert pair.last_message_at == result.message.created_at


def test_message_send_is_idempotent_on_client_id(users, pair):
    first = send(users, pair, "alice", "once", "cid")
    second = send(users, pair, "alice", "once", "cid")
    assert (second.created, second.message.pk) == (False, first.message.pk)
    assert Message.objects.count() == 1


def test_same_client_id_from_another_sender_is_a_new_message(users, pair):
    send(users, pair, "alice", "a", "cid")
    assert send(users, pair, "bob", "b", "cid").created


def test_message_send_resend_is_caught_by_the_unique_constraint(users, pair):
    first = send(users, pair, "alice", "once", "cid")
    # No lookup before the insert: the unique constraint refuses the copy and the stored one is returned.
    second = send(users, pair, "alice", "once again?", "cid")
    assert (second.created, second.message.pk, second.message.body) == (False, first.message.pk, "once")
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "client_id", "code"),
    [("", None, "invalid"), ("x" * 4001, None, "too_long"), ("ok", "c" * 65, "too_long"), ("a\x00b", None, "invalid")],
)
def test_message_send_refuses_what_the_protocol_refuses(users, pair, body, client_id, code):
    with pytest.raises(ProtocolError) as refused:
        send(users, pair, "alice", body, client_id)
    assert refused.value.code == code
    assert Message.objects.count() == 0


@pytest.mark.parametrize("blocker", ["alice", "bob"])
def test_no_message_is_stored_between_users_who_blocked_each_other(users, pair, blocker):
    other = "bob" if blocker == "alice" else "alice"
    Block.objects.create(blocker=users[blocker], blocked=users[other])
    with pytest.raises(services.PostingRefused):
        send(users, pair, "alice")
    pair.refresh_from_db()
    assert (Message.objects.count(), pair.last_message_at) == (0, None)


def test_no_message_is_stored_from_a_non_member(users):
    room = services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)
    with pytest.raises(services.PostingRefused):
        send(users, room, "carol")
    assert Message.objects.count() == 0


def test_the_recipients_unread_total_comes_with_the_stored_message(users, pair):
    send(users, pair, "alice", "one")
    result = services.message_store(sender=users["alice"], conversation=pair, body="two", client_id=None)
    events = services.message_events(message=result.message, conversation=pair, inbox_unread=result.inbox_unread)
    assert json.loads(events[1][1]["text"])["unread"] == 2 == selectors.inbox_unread_count(user_id=users["bob"].pk)


def test_message_is_published_only_after_commit(users, pair, django_capture_on_commit_callbacks):
    published = []

    def publish(events):
        published.append(events)
        return [True] * len(events)

    with mock.patch("dm.services.group_send_many_sync", side_effect=publish):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = send(users, pair, "alice")
        assert published == []
        for callback in callbacks:
            callback()
    # The conversation's frame and the recipient's inbox frame, in one batch.
    [(group, event), (inbox_group, _)] = published[0]
    assert group == f"dm_{users['alice'].pk}_{users['bob'].pk}"
    assert inbox_group == f"user_{users['bob'].pk}"
    assert event["sender"] == users["alice"].pk
    assert result.broadcast is True


# Read markers and unread counts.


def test_read_mark_moves_forward_only_and_stops_at_the_newest(users, pair):
    ids = [send(users, pair, "alice", str(n)).message.pk for n in range(3)]
    assert services.read_mark(user=users["bob"], conversation=pair, message_id=ids[1]) == ids[1]
    assert services.read_mark(user=users["bob"], conversation=pair, message_id=ids[0]) is None
    assert services.read_mark(user=users["bob"], conversation=pair, message_id=ids[2] + 50) == ids[2]
    assert Membership.objects.get(user=users["bob"]).last_read_id == ids[2]


def test_read_mark_in_an_empty_conversation_does_nothing(users, pair):
    assert services.read_mark(user=users["bob"], conversation=pair, message_id=5) is None


def test_unread_counts_exclude_own_read_and_blocked(users, pair):
    send(users, pair, "alice", "1")
    second = send(users, pair, "alice", "2").message
    send(users, pair, "bob", "mine")
    assert selectors.inbox_unread_count(user_id=users["bob"].pk) == 2
    services.read_mark(user=users["bob"], conversation=pair, message_id=second.pk - 1)
    assert selectors.inbox_unread_count(user_id=users["bob"].pk) == 1
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    assert selectors.inbox_unread_count(user_id=users["bob"].pk) == 0


def test_conversation_list_orders_by_activity_with_unread_and_last_message(users, pair):
    room = services.room_create(creator=users["bob"], name="Lobby", slug="lobby", private=False)
    services.direct_conversation_get_or_create(user_a=users["bob"], user_b=users["carol"])  # no messages: hidden
    send(users, pair, "alice", "older")
    services.room_join(user=users["alice"], conversation=room)
    newest = send(users, room, "alice", "newest").message
    results = selectors.conversation_list(user_id=users["bob"].pk)
    assert [(r["kind"], r["title"], r["url"], r["unread"]) for r in results] == [
        ("room", "Lobby", "/rooms/lobby/", 1),
        ("direct", "alice", "/messages/alice/", 1),
    ]
    assert results[0]["last_message"]["id"] == newest.pk


# Rooms.


def test_room_create_makes_the_creator_a_member(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=True)
    assert selectors.is_member(conversation_id=room.pk, user_id=users["alice"].pk)


def test_joining_a_room_starts_with_everything_read(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    newest = send(users, room, "alice").message
    assert services.room_join(user=users["bob"], conversation=room).last_read_id == newest.pk
    assert services.room_join(user=users["bob"], conversation=room).last_read_id == newest.pk


def test_private_rooms_are_invite_only(users, add_member):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=True)
    with pytest.raises(ValueError):
        services.room_join(user=users["bob"], conversation=room)
    add_member(room, users["bob"])
    assert selectors.is_member(conversation_id=room.pk, user_id=users["bob"].pk)
    services.room_remove(conversation=room, user=users["bob"])
    assert not selectors.is_member(conversation_id=room.pk, user_id=users["bob"].pk)
    with pytest.raises(ValueError):
        services.room_remove(conversation=room, user=users["alice"])


def test_public_rooms_have_no_invitations(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    with pytest.raises(ValueError):
        services.room_invite(inviter=users["alice"], room=room, invitee=users["bob"])
    with pytest.raises(ValueError):
        services.room_remove(conversation=room, user=users["bob"])


def test_room_leave_removes_membership(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    services.room_join(user=users["bob"], conversation=room)
    services.room_leave(user=users["bob"], conversation=room)
    assert not selectors.is_member(conversation_id=room.pk, user_id=users["bob"].pk)


def test_room_history_hides_users_you_blocked(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    services.room_join(user=users["bob"], conversation=room)
    send(users, room, "alice", "from alice")
    send(users, room, "bob", "from bob")
    page, _ = selectors.messages_before(
        conversation_id=room.pk, before_id=None, limit=10, hidden_senders=frozenset({users["bob"].pk})
    )
    assert [m.body for m in page] == ["from alice"]


# Blocks.


def test_block_and_unblock(users):
    services.block_create(blocker=users["alice"], blocked=users["bob"])
    services.block_create(blocker=users["alice"], blocked=users["bob"])
    assert selectors.blocked_between(user_a_id=users["bob"].pk, user_b_id=users["alice"].pk)
    services.block_delete(blocker=users["alice"], blocked=users["bob"])
    assert not Block.objects.exists()
    with pytest.raises(ValueError):
        services.block_create(blocker=users["alice"], blocked=users["alice"])


# Presence.


@pytest.fixture
def no_grace(settings):
    """Leaves fall due at once (the tests call presence_leave_due where the timer would)."""
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEAVE_GRACE_MS": 0}


def test_presence_announces_first_tab_in_and_last_tab_out(users, no_grace):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    assert services.presence_enter(**where, channel_name="one") == 1
    assert services.presence_enter(**where, channel_name="two") is None
    assert services.presence_exit(**where, channel_name="one") is False
    assert services.presence_exit(**where, channel_name="two") is True
    assert services.presence_exit(**where, channel_name="two") is False
    assert services.presence_leave_due(**where) == 2
    assert services.presence_leave_due(**where) is None


def test_a_reconnect_within_the_grace_period_announces_neither_leave_nor_join(users, no_grace):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    assert services.presence_enter(**where, channel_name="tab") == 1
    for cycle in range(5):
        assert services.presence_exit(**where, channel_name=f"tab{cycle - 1}" if cycle else "tab") is True
        assert services.presence_enter(**where, channel_name=f"tab{cycle}") is None
    assert services.presence_leave_due(**where) is None
    assert services.presence_exit(**where, channel_name="tab4") is True
    assert services.presence_leave_due(**where) == 2


def test_the_grace_runs_from_the_latest_close(users, settings):
    """A timer from an earlier close finds the grace of a later one not over: no leave yet."""
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_LEAVE_GRACE_MS": 60_000}
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    services.presence_enter(**where, channel_name="tab")
    services.presence_exit(**where, channel_name="tab")
    PresenceVersion.objects.filter(user=users["alice"]).update(left_at=timezone.now() - timedelta(minutes=5))
    # Back, and gone again a moment ago: the first close's timer fires now.
    services.presence_enter(**where, channel_name="tab2")
    services.presence_exit(**where, channel_name="tab2")
    assert services.presence_leave_due(**where) is None
    assert [user["username"] for user in selectors.room_online(conversation_id=room.pk)] == ["alice"]
    PresenceVersion.objects.filter(user=users["alice"]).update(left_at=timezone.now() - timedelta(minutes=2))
    assert services.presence_leave_due(**where) == 2
    assert selectors.room_online(conversation_id=room.pk) == []


def test_an_overdue_leave_whose_process_died_is_announced_by_the_sweep(users, settings):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    bob = {"conversation_id": room.pk, "user_id": users["bob"].pk}
    services.presence_enter(**bob, channel_name="bob-tab")
    assert services.presence_exit(**bob, channel_name="bob-tab") is True
    # Nobody calls presence_leave_due (the process was killed); alice's beat finds it overdue.
    alice = {"conversation_id": room.pk, "user_id": users["alice"].pk, "channel_name": "alice-tab"}
    services.presence_enter(**alice)
    PresenceVersion.objects.filter(user=users["bob"]).update(left_at=timezone.now() - timedelta(seconds=10))
    assert services.presence_refresh(**alice).gone == [({"id": users["bob"].pk, "username": "bob"}, 2)]
    assert services.presence_refresh(**alice).gone == []


def test_stale_presence_rows_do_not_count(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    services.presence_enter(**where, channel_name="dead-process")
    Presence.objects.update(seen_at=timezone.now() - timedelta(hours=1))
    assert selectors.room_online(conversation_id=room.pk) == []
    # The room was never told she left (no sweep yet), so there is no join to announce.
    assert services.presence_enter(**where, channel_name="fresh") is None
    assert selectors.room_online(conversation_id=room.pk) == [{"id": users["alice"].pk, "username": "alice"}]
    # The next beat sweeps the dead row; alice is still in, so nobody left.
    assert services.presence_refresh(**where, channel_name="fresh") == services.PresenceBeat(back=None, gone=[])
    assert not Presence.objects.filter(channel_name="dead-process").exists()


def test_a_dead_users_row_is_left_for_the_sweep_that_announces_their_leave(users):
    """Entering never deletes another user's stale row silently: that user's leave would never be sent."""
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    services.presence_enter(conversation_id=room.pk, user_id=users["bob"].pk, channel_name="dead-process")
    Presence.objects.update(seen_at=timezone.now() - timedelta(hours=1))
    alice = {"conversation_id": room.pk, "user_id": users["alice"].pk, "channel_name": "alice-tab"}
    services.presence_enter(**alice)
    beat = services.presence_refresh(**alice)
    # bob's join was version 1: his leave is 2.
    assert beat.gone == [({"id": users["bob"].pk, "username": "bob"}, 2)]


def test_heartbeat_of_a_swept_socket_brings_its_user_back(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    services.presence_enter(**where, channel_name="stalled")
    assert services.presence_refresh(**where, channel_name="stalled") == services.PresenceBeat(back=None, gone=[])
    # The process stalls past the limit; bob's heartbeat sweeps the row and announces the leave (2).
    Presence.objects.filter(channel_name="stalled").update(seen_at=timezone.now() - timedelta(hours=1))
    bob = {"conversation_id": room.pk, "user_id": users["bob"].pk, "channel_name": "bob-tab"}
    services.presence_enter(**bob)
    assert [version for _, version in services.presence_refresh(**bob).gone] == [2]
    assert selectors.room_online(conversation_id=room.pk) == [{"id": users["bob"].pk, "username": "bob"}]
    # So the join back is 3.
    assert services.presence_refresh(**where, channel_name="stalled").back == 3
    assert {user["username"] for user in selectors.room_online(conversation_id=room.pk)} == {"alice", "bob"}


def test_heartbeat_of_a_swept_socket_is_no_news_while_another_tab_kept_the_user_in(users):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=False)
    where = {"conversation_id": room.pk, "user_id": users["alice"].pk}
    services.presence_enter(**where, channel_name="other-tab")
    assert services.presence_refresh(**where, channel_name="swept-tab").back is None
    assert Presence.objects.filter(channel_name="swept-tab").exists()


@pytest.fixture
def secret_room(users, add_member):
    room = services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)
    add_member(room, users["bob"])
    return room


def test_presence_versions_keep_growing_across_leaving_and_rejoining_the_room(users, secret_room, add_member, no_grace):
    where = {"conversation_id": secret_room.pk, "user_id": users["bob"].pk}
    assert services.presence_enter(**where, channel_name="tab") == 1
    services.room_remove(conversation=secret_room, user=users["bob"])
    assert services.presence_exit(**where, channel_name="tab") is True
    assert services.presence_leave_due(**where) == 2
    add_member(secret_room, users["bob"])
    assert services.presence_enter(**where, channel_name="tab-again") == 3
    assert selectors.presence_versions(conversation_id=secret_room.pk) == {users["bob"].pk: 3}


# Access.


def test_access_direct_refusals(users):
    with pytest.raises(access.NotFound):
        access.access_direct(users["alice"], "nobody")
    with pytest.raises(access.AccessDenied) as refused:
        access.access_direct(users["alice"], "alice")
    assert refused.value.status == 403
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    with pytest.raises(access.AccessDenied):
        access.access_direct(users["alice"], "bob")


def test_access_direct_refuses_inactive_users(users):
    users["bob"].is_active = False
    users["bob"].save()
    with pytest.raises(access.NotFound):
        access.access_direct(users["alice"], "bob")


def test_access_room_and_manage(users, add_member):
    room = services.room_create(creator=users["alice"], name="R", slug="r", private=True)
    add_member(room, users["bob"])
    with pytest.raises(access.NotFound):
        access.access_room(users["alice"], "missing")
    with pytest.raises(access.AccessDenied):
        access.access_room(users["carol"], "r")
    assert access.access_room(users["bob"], "r") == room
    assert access.access_room_manage(users["alice"], "r") == room
    with pytest.raises(access.AccessDenied):
        access.access_room_manage(users["bob"], "r")
