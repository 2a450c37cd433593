"""Per-user limits on HTTP writes: a flood of comments, posts, rooms or invitations is refused, nothing half-written."""

import pytest

from dm.models import Conversation, RoomInvitation
from notifications.models import Notification
from social.models import Comment, Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.WRITE_RATE_LIMITS = {"post": "3/m", "comment": "5/m", "room_create": "2/h", "invite": "3/h"}
    return settings.WRITE_RATE_LIMITS


@pytest.fixture
def people(users, client):
    client.force_login(users["alice"])
    return users


def test_comments_that_mention_a_victim_stop_at_the_limit(client, people, limits):
    post = Post.objects.create(author=people["alice"], title="t", body="b")
    statuses = [client.post(f"/posts/{post.pk}/", {"body": f"hey @carol {n}"}).status_code for n in range(8)]
    assert statuses == [302] * 5 + [429] * 3
    assert Comment.objects.count() == 5
    assert Notification.objects.filter(recipient=people["carol"]).count() == 5
    page = client.post(f"/posts/{post.pk}/", {"body": "one more"})
    assert b"too often" in page.content


def test_posts_stop_at_the_limit_and_others_are_not_affected(client, people, limits):
    statuses = [client.post("/", {"title": f"t{n}", "body": "b"}).status_code for n in range(4)]
    assert statuses == [302, 302, 302, 429]
    client.force_login(people["bob"])
    assert client.post("/", {"title": "bob's", "body": "b"}).status_code == 302
    assert Post.objects.count() == 4


def test_room_creation_stops_at_the_limit(client, people, limits):
    statuses = [
        client.post("/rooms/", {"name": f"Room {n}", "slug": f"room-{n}", "private": ""}).status_code for n in range(3)
    ]
    assert statuses == [302, 302, 429]
    assert Conversation.objects.filter(kind="room").count() == 2


def test_invitations_stop_at_the_limit(client, people, limits, make_user):
    client.post("/rooms/", {"name": "Secret", "slug": "secret", "private": "on"})
    for n in range(5):
        make_user(f"victim{n}")
        client.post("/rooms/secret/members/", {"username": f"victim{n}"})
    room = Conversation.objects.get(slug="secret")
    assert RoomInvitation.objects.filter(conversation=room).count() == 3
    # An invitation is not a membership: the victims' inboxes are untouched until they accept.
    assert not room.memberships.filter(user__username__startswith="victim").exists()
