"""notify(), anotify() and marking read: rows first, pushes on commit."""

import asyncio
import logging
import threading

import pytest
from django.db import connection, transaction

from notifications import selectors
from notifications.models import Notification
from notifications.services import (
    anotify,
    notifications_mark_all_read,
    notifications_mark_read,
    notify,
)
from social.realtime import publish

pytestmark = pytest.mark.django_db


def test_notify_stores_and_pushes_on_commit(alice, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notification = notify(alice, "Backup finished", url="/notifications/")
        assert pushes == []  # nothing before the commit
    assert pushes.to(alice) == [
        {
            "type": "notification",
            "notification": {
                "id": notification.pk,
                "kind": "system",
                "actor": None,
                "text": "Backup finished",
                "url": "/notifications/",
                "created_at": notification.created_at.isoformat(timespec="microseconds"),
                "read": False,
                "replaces": [],
                "actors": [],
                "count": 1,
            },
            "unread": 1,
        }
    ]


def test_notify_accepts_a_user_id_and_an_actor(alice, bob, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notify(alice.pk, "hi", actor=bob, kind="mention")
    frame = pushes.to(alice)[0]
    assert frame["notification"]["actor"] == {"id": bob.pk, "username": "bob"}
    assert frame["notification"]["kind"] == "mention"


@pytest.mark.parametrize(
    ("recipient", "text", "kwargs"),
    [
        (999_999, "x", {}),
        ("alice", "x", {}),
        (True, "x", {}),
        (None, "   ", {}),
        (None, "x", {"url": "javascript:alert(1)"}),
        (None, "x", {"url": "//evil.example/"}),
        (None, "x", {"kind": "shout"}),
    ],
)
def test_notify_refuses_bad_arguments(alice, recipient, text, kwargs):
    with pytest.raises((ValueError, TypeError)):
        notify(alice if recipient is None else recipient, text, **kwargs)
    assert not Notification.objects.exists()


def test_long_text_is_shortened_to_fit(alice):
    assert len(notify(alice, "word " * 200).text) == 500


def test_rollback_stores_and_pushes_nothing(alice, pushes, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notify(alice, "never")
        raise RuntimeError
    assert callbacks == [] and pushes == []
    assert not Notification.objects.exists()


def test_layer_failure_is_logged_and_keeps_the_row(alice, monkeypatch, caplog, django_capture_on_commit_callbacks):
    class BrokenLayer:
        async def group_send(self, group, event):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(publish, "get_channel_layer", lambda: BrokenLayer())
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        notification = notify(alice, "still stored")
    assert Notification.objects.filter(pk=notification.pk).exists()
    assert "group_send to user_" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_notify_from_a_thread(alice, pushes):
    done = []

    def job():
        try:
            done.append(notify(alice.pk, "from a thread"))
        finally:
            connection.close()

    thread = threading.Thread(target=job)
    thread.start()
    thread.join(10)
    assert done and Notification.objects.get().text == "from a thread"
    assert pushes.to(alice)[0]["notification"]["text"] == "from a thread"


@pytest.mark.django_db(transaction=True)
def test_anotify_and_notify_from_async_code(alice, pushes, caplog):
    async def main():
        first = await anotify(alice, "awaited")
        second = notify(alice, "called by mistake from a coroutine")
        return first, second

    with caplog.at_level(logging.WARNING):
        first, second = asyncio.run(main())
    assert [frame["notification"]["id"] for frame in pushes.to(alice)] == [first.pk, second.pk]
    assert "use `await anotify" in caplog.text


def test_mark_read_only_touches_own_unread_and_pushes_count(alice, bob, pushes, django_capture_on_commit_callbacks):
    mine = [notify(alice, f"n{i}") for i in range(3)]
    theirs = notify(bob, "bob's")
    with django_capture_on_commit_callbacks(execute=True):
        result = notifications_mark_read(user_id=alice.pk, ids=[mine[0].pk, theirs.pk])
    assert result == (2, True)
    assert pushes.to(alice) == [{"type": "unread", "unread": 2, "ids": [mine[0].pk]}]
    assert pushes.to(bob) == []
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_read_again_changes_nothing_and_pushes_nothing(alice, pushes, django_capture_on_commit_callbacks):
    notification = notify(alice, "n")
    notifications_mark_read(user_id=alice.pk, ids=[notification.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications_mark_read(user_id=alice.pk, ids=[notification.pk]) == (0, False)
    assert pushes == []


def test_mark_all_read(alice, bob, pushes, django_capture_on_commit_callbacks):
    newest = [notify(alice, f"n{i}") for i in range(3)][-1]
    notify(bob, "bob's")
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications_mark_all_read(user_id=alice.pk) == (0, True)
    assert pushes.to(alice) == [{"type": "unread", "unread": 0, "up_to": newest.pk}]
    assert selectors.unread_count(user_id=bob.pk) == 1
    assert notifications_mark_all_read(user_id=alice.pk) == (0, False)


def test_notifications_after_returns_the_newest_oldest_first(alice):
    ids = [notify(alice, f"n{i}").pk for i in range(5)]
    rows, truncated = selectors.notifications_after(user_id=alice.pk, after_id=ids[0], limit=2)
    assert [row.pk for row in rows] == ids[3:] and truncated
    rows, truncated = selectors.notifications_after(user_id=alice.pk, after_id=ids[2], limit=2)
    assert [row.pk for row in rows] == ids[3:] and not truncated


def test_notifications_before_pages_newest_first(alice, bob):
    ids = [notify(alice, f"n{i}").pk for i in range(5)]
    notify(bob, "not alice's")
    rows, has_more = selectors.notifications_before(user_id=alice.pk, before_id=None, limit=3)
    assert [row.pk for row in rows] == ids[:1:-1] and has_more
    rows, has_more = selectors.notifications_before(user_id=alice.pk, before_id=ids[2], limit=3)
    assert [row.pk for row in rows] == [ids[1], ids[0]] and not has_more


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how_many", [3, 20])  # 20: past the pub/sub layer's BATCH_MIN, sent as one batch
async def test_notify_many_reaches_every_recipient_once_with_their_count(make_user, cookie_for, sockets, how_many):
    from asgiref.sync import sync_to_async

    from notifications.services import notify_many

    users = [await sync_to_async(make_user)(f"user{n}") for n in range(how_many)]
    bells = []
    for user in users:
        bell = await sockets.open("/ws/notifications/", cookie=await sync_to_async(cookie_for)(user))
        assert (await bell.recv())["type"] == "ready"
        bells.append(bell)
    await sync_to_async(notify_many)([users[0], users[1].pk, *users[2:]], "Maintenance at 22:00")
    for bell in bells:
        frame = await bell.recv()
        assert frame["notification"]["text"] == "Maintenance at 22:00" and frame["unread"] == 1
        assert await bell.silent()


@pytest.mark.django_db
def test_notify_many_refuses_unknown_ids_and_stores_nothing(make_user):
    from notifications.models import Notification
    from notifications.services import notify_many

    alice = make_user("alice")
    with pytest.raises(ValueError):
        notify_many([alice, 999_999], "hello")
    assert not Notification.objects.exists()
