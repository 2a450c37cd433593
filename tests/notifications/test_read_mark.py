"""Mark-all-read as one row (ReadMark): everything under it reads as read at once, the job settles the rows."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from notifications import digests, selectors, services, tasks
from notifications.models import Notification, ReadMark
from notifications.services import notifications_mark_all_read, notifications_mark_read, notify, notify_many
from social.realtime import publish
from social.realtime.protocol import notification_dict
from social.services import comment_create
from tests.notifications.test_digests import LATER, compose_and_send
from tests.support.server import database_url
from tests.support.waiting import wait_until
from tests.support.workers import JobWorker

pytestmark = pytest.mark.django_db


@pytest.fixture
def marked(alice):
    """Three notifications of alice's, all read by one mark-all-read whose job has not run."""
    rows = [notify(alice, f"n{i}") for i in range(3)]
    assert notifications_mark_all_read(user_id=alice.pk) == (0, True)
    return rows


def settle_jobs():
    return DBTaskResult.objects.filter(task_path="notifications.tasks.settle_read")


def test_mark_all_read_moves_one_mark_and_leaves_the_rows(alice, marked):
    assert ReadMark.objects.get(user=alice).up_to == marked[-1].pk
    assert Notification.objects.filter(recipient=alice, read_at=None).count() == 3
    assert selectors.unread_count(user_id=alice.pk) == 0
    assert [job.args_kwargs["args"] for job in settle_jobs()] == [[alice.pk]]


def test_rows_under_the_mark_read_as_read_in_the_api_the_page_and_a_resume(alice, marked):
    client = Client()
    client.force_login(alice)
    body = client.get("/api/notifications/").json()
    assert body["unread"] == 0
    assert [row["read"] for row in body["results"]] == [True, True, True]
    page = client.get("/notifications/").content.decode()
    assert '"notifications-unread">0 unread<' in page and page.count('class="card notification-row"') == 3
    assert "notification-state" not in page and "notifications-mark-all" not in page
    rows, _ = selectors.notifications_after(user_id=alice.pk, after_id=0, limit=10)
    assert [notification_dict(row)["read"] for row in rows] == [True, True, True]


def test_what_arrives_after_the_mark_is_unread(alice, marked):
    newer = notify(alice, "newer")
    assert selectors.unread_count(user_id=alice.pk) == 1
    rows, _ = selectors.notifications_after(user_id=alice.pk, after_id=marked[0].pk, limit=10)
    unread_flags = [(row.pk, row.read_at is None) for row in rows]
    assert unread_flags == [(marked[1].pk, False), (marked[2].pk, False), (newer.pk, True)]


def test_marking_read_by_id_under_the_mark_changes_nothing(alice, marked, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications_mark_read(user_id=alice.pk, ids=[marked[0].pk]) == (0, False)
    assert pushes == []


def test_a_new_comment_does_not_group_into_one_read_by_the_mark(alice, bob, carol, post):
    comment_create(author=bob, post=post, body="first")
    assert notifications_mark_all_read(user_id=alice.pk).changed
    comment_create(author=carol, post=post, body="second")
    (newest,) = selectors.notifications_of(user_id=alice.pk)[:1]
    assert newest.count == 1 and newest.replaces == []
    assert selectors.notifications_of(user_id=alice.pk).count() == 2
    assert selectors.unread_count(user_id=alice.pk) == 1


def test_nothing_read_by_the_mark_is_emailed(alice, bob, marked, mailoutbox):
    assert alice.pk not in digests.candidate_user_ids(now=timezone.now() + LATER)
    assert compose_and_send(alice, LATER) is None
    notify(alice, "after the mark")
    compose_and_send(alice, LATER)
    (email,) = mailoutbox
    assert [line[2:] for line in email.body.splitlines() if line.startswith("- ")] == ["after the mark"]


def test_the_job_settles_the_rows_in_batches_once(alice, bob, marked, monkeypatch):
    monkeypatch.setattr(services, "SETTLE_BATCH", 2)
    later = notify(alice, "later")
    bobs = notify(bob, "bob's")
    (job,) = settle_jobs()
    assert tasks.settle_read.call(*job.args_kwargs["args"]) == 3
    mark = ReadMark.objects.get(user=alice)
    assert mark.settled_up_to == mark.up_to
    assert set(Notification.objects.filter(read_at=mark.marked_at).values_list("pk", flat=True)) == {
        row.pk for row in marked
    }
    assert Notification.objects.get(pk=later.pk).read_at is None
    assert Notification.objects.get(pk=bobs.pk).read_at is None
    assert tasks.settle_read.call(alice.pk) == 0
    assert selectors.unread_count(user_id=alice.pk) == 1


def test_a_mark_never_moves_back(alice, marked):
    """What a slower concurrent mark-all-read, which read an older newest id, does when it commits last."""
    up_to = ReadMark.objects.get(user=alice).up_to
    services._move_mark(alice.pk, marked[0].pk)
    assert ReadMark.objects.get(user=alice).up_to == up_to
    services._move_mark(alice.pk, up_to + 5)
    assert ReadMark.objects.get(user=alice).up_to == up_to + 5


def test_notify_many_counts_each_recipient_above_their_mark(
    alice, bob, marked, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(publish, "group_send_many_sync", lambda events: sent.extend(events))
    notify(bob, "bob's first")
    with django_capture_on_commit_callbacks(execute=True):
        notify_many([alice, bob], "Maintenance at 22:00")
    assert selectors.unread_counts(user_ids=[alice.pk, bob.pk]) == {alice.pk: 1, bob.pk: 2}
    assert [json.loads(event["text"])["unread"] for _, event in sent] == [1, 2]


def test_the_prune_settles_marks_whose_job_was_lost_then_prunes(alice, marked, settings):
    DBTaskResult.objects.all().delete()
    settings.ATTENTION = {**settings.ATTENTION, "RETENTION_DAYS": 0}
    assert tasks.notifications_prune.call() == 3
    assert not Notification.objects.filter(recipient=alice).exists()
    mark = ReadMark.objects.get(user=alice)
    assert mark.settled_up_to == mark.up_to == marked[-1].pk


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_settles_a_mark_all_read_from_the_api(alice):
    rows = [notify(alice, f"n{i}") for i in range(3)]
    client = Client()
    client.force_login(alice)
    response = client.post("/api/notifications/read/", {"all": True}, content_type="application/json")
    assert response.json() == {"unread": 0}
    assert Notification.objects.filter(recipient=alice, read_at=None).count() == 3
    worker = JobWorker(database=database_url(connection.settings_dict), name="settle").start()
    try:
        wait_until(
            lambda: not Notification.objects.filter(recipient=alice, read_at=None).exists(), 60, "the rows settled"
        )
    finally:
        worker.stop()
    mark = ReadMark.objects.get(user=alice)
    assert (mark.up_to, mark.settled_up_to) == (rows[-1].pk, rows[-1].pk)
    assert settle_jobs().get().status == "SUCCESSFUL"


def test_the_hand_written_counts_and_pages_agree_with_the_orm_rule(alice, bob):
    """The badge, notify_many's counts and the wire's pages are SQL twins of ``unread()`` and
    ``with_read_marks``: under a mark, read by id, superseded by a group, another user's."""
    for i in range(4):
        notify(alice, f"n{i}")
    notifications_mark_all_read(user_id=alice.pk)
    later = [notify(alice, f"later{i}") for i in range(4)]
    notifications_mark_read(user_id=alice.pk, ids=[later[1].pk])
    Notification.objects.filter(pk=later[2].pk).update(superseded_by=later[3])
    notify(bob, "bob's")
    rule = selectors.unread(user_id=alice.pk).count()
    assert rule == 2
    assert selectors.unread_count(user_id=alice.pk) == rule
    assert selectors.unread_counts(user_ids=[alice.pk, bob.pk]) == {alice.pk: rule, bob.pk: 1}
    page, has_more = selectors.notifications_before(user_id=alice.pk, before_id=None, limit=50)
    orm = selectors.with_read_marks(list(selectors.notifications_of(user_id=alice.pk)), user_id=alice.pk)
    assert [notification_dict(row) for row in page] == [notification_dict(row) for row in orm]
    assert [row["read"] for row in map(notification_dict, page)] == [False, True, False] + [True] * 4
    assert has_more is False
    replay, _ = selectors.notifications_after(user_id=alice.pk, after_id=0, limit=50)
    assert [notification_dict(row) for row in replay] == [notification_dict(row) for row in orm[::-1]]
