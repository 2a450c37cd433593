"""Comments and posts notify the right people once, on commit, never the actor."""

import pytest
from django.db import transaction

from dm.models import Block
from notifications.models import Notification
from notifications.services import mentioned_user_ids
from social import services as social

pytestmark = pytest.mark.django_db


@pytest.fixture
def post(alice):
    return social.post_create(author=alice, title="Hello", body="first")


def kinds():
    return {(n.recipient.username, n.kind) for n in Notification.objects.select_related("recipient")}


def test_comment_on_your_post(alice, bob, post, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        comment = social.comment_create(author=bob, post=post, body="nice")
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.actor) == (alice, "comment", bob)
    assert notification.text == "bob commented on your post “Hello”"
    assert notification.url == f"/posts/{post.pk}/#comment-{comment.pk}"
    assert [frame["notification"]["id"] for frame in pushes.to(alice)] == [notification.pk]


def test_no_notification_for_your_own_action(alice, post):
    social.comment_create(author=alice, post=post, body="talking to myself, @alice")
    social.post_create(author=alice, title="@alice", body="me @alice")
    assert not Notification.objects.exists()


def test_reply_beats_comment_beats_mention(alice, bob, carol, post):
    parent = social.comment_create(author=alice, post=post, body="my own post")
    Notification.objects.all().delete()
    social.comment_create(author=carol, post=post, body="@alice @bob see", parent=parent)
    assert kinds() == {("alice", "reply"), ("bob", "mention")}
    bobs = social.comment_create(author=bob, post=post, body="hi")
    Notification.objects.all().delete()
    social.comment_create(author=carol, post=post, body="@bob @alice", parent=bobs)
    assert kinds() == {("bob", "reply"), ("alice", "comment")}


def test_reply_text_and_one_per_user_per_comment(alice, bob, carol, post):
    parent = social.comment_create(author=carol, post=post, body="first")
    Notification.objects.all().delete()
    social.comment_create(author=bob, post=post, body="@carol @carol @CAROL.", parent=parent)
    assert list(Notification.objects.filter(recipient=carol).values_list("kind", "text")) == [
        ("reply", "bob replied to your comment on “Hello”")
    ]


def test_mention_in_a_post(alice, bob, carol):
    post = social.post_create(author=bob, title="Hi @carol", body="cc @alice, and mail me at bob@alice")
    assert kinds() == {("alice", "mention"), ("carol", "mention")}
    notification = Notification.objects.get(recipient=alice)
    assert notification.text == "bob mentioned you in “Hi @carol”"
    assert notification.url == f"/posts/{post.pk}/"


def test_mention_in_a_comment(alice, bob, carol, post):
    comment = social.comment_create(author=bob, post=post, body="what do you think, @carol?")
    notification = Notification.objects.get(recipient=carol)
    assert notification.kind == "mention"
    assert notification.text == "bob mentioned you in a comment on “Hello”"
    assert notification.url == comment.get_absolute_url()


def test_blocked_actor_does_not_notify(alice, bob, post):
    Block.objects.create(blocker=alice, blocked=bob)
    social.comment_create(author=bob, post=post, body="hello? @alice")
    assert not Notification.objects.exists()


def test_unknown_and_inactive_mentions_are_ignored(make_user):
    make_user("dormant", is_active=False)
    assert mentioned_user_ids("@nobody @dormant @") == set()


def test_rolled_back_comment_notifies_nobody(alice, bob, post, pushes, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        social.comment_create(author=bob, post=post, body="@alice oops")
        raise RuntimeError("the view failed after saving")
    assert callbacks == [] and pushes == []
    assert not Notification.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_comment_in_a_real_transaction(alice, bob, pushes):
    post = social.post_create(author=alice, title="Hello", body="first")
    with pytest.raises(RuntimeError), transaction.atomic():
        social.comment_create(author=bob, post=post, body="nice")
        raise RuntimeError
    assert pushes == [] and not Notification.objects.exists()
    social.comment_create(author=bob, post=post, body="nice")
    assert [frame["type"] for frame in pushes.to(alice)] == ["notification"]
