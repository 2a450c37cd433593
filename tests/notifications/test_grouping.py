"""Grouped notifications: a repeat of an unread one of the same kind and target supersedes it."""

from __future__ import annotations

import multiprocessing

import pytest
from django.db import connection
from django.test import Client

from notifications import selectors
from notifications.models import Notification
from notifications.services import notifications_mark_read, notify
from social.models import Post
from social.services import comment_create
from tests.conftest import needs_postgres
from tests.support.processes import comment_at_once
from tests.support.server import database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(make_user):
    return make_user("dave")


@pytest.fixture
def erin(make_user):
    return make_user("erin")


def visible_of(user):
    return list(selectors.notifications_of(user_id=user.pk))


def test_a_second_comment_supersedes_the_unread_first(
    alice, bob, carol, post, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        comment_create(author=bob, post=post, body="one")
    first = pushes.to(alice)[-1]["notification"]
    with django_capture_on_commit_callbacks(execute=True):
        comment_create(author=carol, post=post, body="two")
    frame = pushes.to(alice)[-1]
    group = frame["notification"]
    assert group["text"] == "carol and bob commented on your post “Hello”"
    assert group["replaces"] == [first["id"]]
    assert group["count"] == 2
    assert [actor["username"] for actor in group["actors"]] == ["carol", "bob"]
    assert group["actor"]["username"] == "carol"
    assert group["id"] > first["id"]
    # The count counts the group once, live and in the database.
    assert frame["unread"] == 1 == selectors.unread_count(user_id=alice.pk)
    assert [n.pk for n in visible_of(alice)] == [group["id"]]


def test_many_actors_read_as_the_newest_and_n_others(alice, bob, carol, dave, erin, post):
    for author in (bob, carol, dave, erin):
        comment_create(author=author, post=post, body="hi")
    (group,) = visible_of(alice)
    assert group.text == "erin and 3 others commented on your post “Hello”"
    assert group.count == 4
    assert len(group.replaces) == 3  # every id of the chain, so a client that missed one still drops it
    data = Client()
    data.force_login(alice)
    listed = data.get("/api/notifications/").json()
    assert [item["id"] for item in listed["results"]] == [group.pk]
    assert [actor["username"] for actor in listed["results"][0]["actors"]] == ["erin", "dave", "carol"]
    assert listed["unread"] == 1


def test_the_same_actor_twice_counts_two_events_and_one_actor(alice, bob, post):
    comment_create(author=bob, post=post, body="one")
    comment_create(author=bob, post=post, body="two")
    (group,) = visible_of(alice)
    assert (group.count, group.text) == (2, "bob commented on your post “Hello”")


def test_a_read_notification_is_not_grouped_into(alice, bob, carol, post):
    comment_create(author=bob, post=post, body="one")
    (first,) = visible_of(alice)
    notifications_mark_read(user_id=alice.pk, ids=[first.pk])
    comment_create(author=carol, post=post, body="two")
    newest = visible_of(alice)[0]
    assert (newest.replaces, newest.count, len(visible_of(alice))) == ([], 1, 2)


def test_other_posts_and_other_kinds_are_separate_groups(alice, bob, carol, post):
    other = Post.objects.create(author=alice, title="Other", body="x")
    comment_create(author=bob, post=post, body="one")
    comment_create(author=bob, post=other, body="two")
    mine = comment_create(author=alice, post=other, body="mine")
    comment_create(author=carol, post=other, body="re", parent=mine)
    assert sorted(n.kind for n in visible_of(alice)) == ["comment", "comment", "reply"]


def test_replies_group_per_parent_comment_and_mentions_per_post(alice, bob, carol, dave, post):
    mine = comment_create(author=alice, post=post, body="mine")
    comment_create(author=bob, post=post, body="a", parent=mine)
    comment_create(author=carol, post=post, body="b", parent=mine)
    reply = visible_of(alice)[0]
    assert (reply.kind, reply.text) == ("reply", "carol and bob replied to your comment on “Hello”")
    comment_create(author=bob, post=post, body="hey @dave")
    comment_create(author=carol, post=post, body="yes @dave")
    (mention,) = visible_of(dave)
    assert mention.text == "carol and bob mentioned you in comments on “Hello”"


def test_system_notifications_are_never_grouped(alice):
    notify(alice, "one")
    notify(alice, "two")
    assert [n.replaces for n in visible_of(alice)] == [[], []]


def test_superseded_rows_are_left_out_of_resume_page_and_mark_read(alice, bob, carol, post):
    comment_create(author=bob, post=post, body="one")
    (first,) = visible_of(alice)
    comment_create(author=carol, post=post, body="two")
    (group,) = visible_of(alice)
    rows, _ = selectors.notifications_after(user_id=alice.pk, after_id=0, limit=10)
    assert [(row.pk, row.replaces) for row in rows] == [(group.pk, [first.pk])]
    # Marking a superseded id read changes nothing.
    assert notifications_mark_read(user_id=alice.pk, ids=[first.pk]).changed is False
    page = Client()
    page.force_login(alice)
    html = page.get("/notifications/").content.decode()
    assert f'data-id="{first.pk}"' not in html
    assert "carol and bob commented on your post “Hello”" in html
    assert "1 unread" in html


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_commenting_at_once_make_one_group(alice, bob, carol):
    rounds = 5
    posts = [Post.objects.create(author=alice, title=f"P{n}", body="x") for n in range(rounds)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    url = database_url(connection.settings_dict)
    workers = [
        context.Process(target=comment_at_once, args=(url, [p.pk for p in posts], author.pk, barrier))
        for author in (bob, carol)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    for post in posts:
        groups = [n for n in visible_of(alice) if n.post_id == post.pk]
        assert len(groups) == 1, post.title
        assert groups[0].count == 2 and len(groups[0].replaces) == 1
    assert Notification.objects.filter(recipient=alice).count() == 2 * rounds
    assert selectors.unread_count(user_id=alice.pk) == rounds


def test_a_long_chain_keeps_bounded_actors_and_replaced_ids(alice, make_user, post, monkeypatch):
    from notifications import services

    monkeypatch.setattr(services, "GROUP_ACTORS_KEPT", 4)
    monkeypatch.setattr(services, "GROUP_REPLACES_KEPT", 3)
    for n in range(6):
        comment_create(author=make_user(f"fan{n}"), post=post, body="wow")
    (group,) = visible_of(alice)
    assert group.count == 6
    assert [actor["username"] for actor in group.actors] == ["fan5", "fan4", "fan3", "fan2"]
    assert group.text == "fan5 and more than 2 others commented on your post “Hello”"
    assert len(group.replaces) == 3 and group.replaces == sorted(group.replaces, reverse=True)


@pytest.fixture
def long_group(alice, bob, post):
    """A busy post's group of 600 events, each superseded by the next; the newest is bob's comment's."""
    newest = comment_create(author=bob, post=post, body="the 600th")
    (head,) = visible_of(alice)
    Notification.objects.bulk_create(
        Notification(recipient=alice, text=f"e{n}", group_key=head.group_key) for n in range(599)
    )
    chain = sorted(Notification.objects.exclude(pk=head.pk).values_list("pk", flat=True)) + [head.pk]
    for older, newer in zip(chain, chain[1:], strict=False):
        Notification.objects.filter(pk=older).update(superseded_by_id=newer)
    return newest, head


def test_deleting_the_comment_behind_a_long_group_does_not_recurse_down_it(alice, long_group):
    comment, head = long_group
    comment.delete()
    assert not Notification.objects.filter(pk=head.pk).exists()
    assert visible_of(alice) == [] and selectors.unread_count(user_id=alice.pk) == 0
    assert Notification.objects.filter(recipient=alice).count() == 599  # unseen until the prune


def test_an_orphaned_row_still_shows_in_the_admin(alice, long_group, make_user):
    comment, head = long_group
    comment.delete()
    orphan = Notification.objects.filter(recipient=alice).order_by("-pk").first()
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    assert client.get(f"/admin/notifications/notification/{orphan.pk}/change/").status_code == 200


def test_deleting_the_recipient_of_a_long_group_deletes_it_all(alice, long_group):
    alice.delete()
    assert not Notification.objects.exists()
