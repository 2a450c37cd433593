"""Muting posts and conversations: through the API and the page buttons."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from dm import selectors as dm_selectors
from dm import services as dm_services
from dm.models import Membership
from notifications import selectors
from social.models import Post
from social.services import comment_create
from tests.conftest import needs_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture
def post(alice):
    return Post.objects.create(author=alice, title="Hello", body="first")


def logged_in(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def mute(client, url, muted):
    return client.post(url, json.dumps({"muted": muted}), content_type="application/json")


def kinds_of(user):
    return [n.kind for n in selectors.notifications_of(user_id=user.pk)]


def test_a_muted_post_sends_no_comments_or_replies_but_mentions_still_arrive(alice, bob, carol, post):
    assert mute(logged_in(alice), f"/api/posts/{post.pk}/mute/", True).json() == {"muted": True}
    mine = comment_create(author=alice, post=post, body="mine")
    comment_create(author=bob, post=post, body="a comment")
    comment_create(author=bob, post=post, body="a reply", parent=mine)
    assert kinds_of(alice) == []
    comment_create(author=carol, post=post, body="look @alice")
    assert kinds_of(alice) == ["mention"]


def test_unmuting_a_post_brings_comments_back(alice, bob, post):
    client = logged_in(alice)
    mute(client, f"/api/posts/{post.pk}/mute/", True)
    assert mute(client, f"/api/posts/{post.pk}/mute/", False).json() == {"muted": False}
    comment_create(author=bob, post=post, body="a comment")
    assert kinds_of(alice) == ["comment"]


def test_post_mute_refuses_bad_bodies_and_unknown_posts(alice, post):
    client = logged_in(alice)
    for body in ["nope", json.dumps({"muted": "yes"}), json.dumps([True]), json.dumps({})]:
        response = client.post(f"/api/posts/{post.pk}/mute/", body, content_type="application/json")
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert mute(client, "/api/posts/999999/mute/", True).status_code == 404
    assert not selectors.post_muted(post_id=post.pk, user_id=alice.pk)
    assert mute(Client(), f"/api/posts/{post.pk}/mute/", True).status_code == 401


def test_the_post_page_button_mutes_and_unmutes(alice, bob, post):
    client = logged_in(alice)
    page = client.get(f"/posts/{post.pk}/").content.decode()
    assert "Mute this post" in page
    response = client.post(f"/posts/{post.pk}/mute/", {"muted": "1"})
    assert response.status_code == 302
    assert "Unmute this post" in client.get(f"/posts/{post.pk}/").content.decode()
    comment_create(author=bob, post=post, body="quiet")
    assert kinds_of(alice) == []
    client.post(f"/posts/{post.pk}/mute/", {"muted": "0"})
    assert "Mute this post" in client.get(f"/posts/{post.pk}/").content.decode()


def test_the_page_buttons_need_the_csrf_token(alice, post):
    client = logged_in(alice, enforce_csrf_checks=True)
    assert client.post(f"/posts/{post.pk}/mute/", {"muted": "1"}).status_code == 403
    assert not selectors.post_muted(post_id=post.pk, user_id=alice.pk)


@pytest.fixture
def pair(users):
    return dm_services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def say(users, conversation, name, count):
    for n in range(count):
        dm_services.message_send(sender=users[name], conversation=conversation, body=f"m{n} @alice", client_id=None)


def test_a_muted_conversation_leaves_the_inbox_total_but_keeps_its_own_unread(users, pair):
    alice = users["alice"]
    client = logged_in(alice)
    say(users, pair, "bob", 2)
    assert dm_selectors.inbox_unread_count(user_id=alice.pk) == 2
    assert mute(client, f"/api/conversations/{pair.pk}/mute/", True).json() == {"muted": True}
    say(users, pair, "bob", 1)
    assert dm_selectors.inbox_unread_count(user_id=alice.pk) == 0
    (entry,) = client.get("/api/conversations/").json()["results"]
    assert (entry["muted"], entry["unread"]) == (True, 3)
    assert dm_selectors.muted_member_ids(conversation_id=pair.pk) == {alice.pk}
    mute(client, f"/api/conversations/{pair.pk}/mute/", False)
    assert dm_selectors.inbox_unread_count(user_id=alice.pk) == 3


def test_muting_pushes_the_new_inbox_total_to_open_tabs(users, pair, pushes, django_capture_on_commit_callbacks):
    say(users, pair, "bob", 2)
    with django_capture_on_commit_callbacks(execute=True):
        dm_services.conversation_mute_set(user=users["alice"], conversation=pair, muted=True)
    assert [frame for frame in pushes.to(users["alice"]) if frame["type"] == "inbox"][-1]["unread"] == 0


def test_a_message_in_a_muted_dm_does_not_raise_the_pushed_total(users, pair):
    dm_services.conversation_mute_set(user=users["alice"], conversation=pair, muted=True)
    result = dm_services.message_store(sender=users["bob"], conversation=pair, body="hi", client_id=None)
    events = dm_services.message_events(message=result.message, conversation=pair, inbox_unread=result.inbox_unread)
    inbox = json.loads(events[-1][1]["text"])
    assert (inbox["type"], inbox["unread"]) == ("inbox", 0)


def test_conversation_mute_is_for_members_only(users, pair):
    room = dm_services.room_create(creator=users["bob"], name="Secret", slug="secret", private=True)
    carol = logged_in(users["carol"])
    assert mute(carol, f"/api/conversations/{pair.pk}/mute/", True).status_code == 404
    assert mute(carol, f"/api/conversations/{room.pk}/mute/", True).status_code == 404
    assert mute(carol, "/api/conversations/99999/mute/", True).status_code == 404
    assert not Membership.objects.filter(muted=True).exists()
    assert mute(logged_in(users["alice"]), f"/api/conversations/{pair.pk}/mute/", "yes").status_code == 400


def test_the_dm_and_room_page_buttons_mute(users, pair):
    client = logged_in(users["alice"])
    assert 'id="mute-button"' in client.get("/messages/bob/").content.decode()
    assert client.post("/messages/bob/mute/", {"muted": "1"}).status_code == 302
    assert dm_selectors.is_muted(conversation_id=pair.pk, user_id=users["alice"].pk)
    assert ">Unmute<" in client.get("/messages/bob/").content.decode()
    room = dm_services.room_create(creator=users["alice"], name="General", slug="general", private=False)
    assert client.post("/rooms/general/mute/", {"muted": "1"}).status_code == 302
    assert dm_selectors.is_muted(conversation_id=room.pk, user_id=users["alice"].pk)
    # Not a member: nothing to mute.
    assert logged_in(users["carol"]).post("/rooms/general/mute/", {"muted": "1"}).status_code == 404


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_into_a_muted_dm_counts_nothing_in_one_statement(users, pair):
    dm_services.message_send(sender=users["bob"], conversation=pair, body="before", client_id=None)
    dm_services.conversation_mute_set(user=users["alice"], conversation=pair, muted=True)
    assert dm_services.stores_batches_in_one_statement()
    results = dm_services.message_store_many(
        sender=users["bob"], conversation=pair, items=[("one", "c1"), ("two", "c2"), ("three", "c3")]
    )
    assert [result.inbox_unread for result in results] == [0, 0, 0]
    dm_services.conversation_mute_set(user=users["alice"], conversation=pair, muted=False)
    items = [("four", "c4"), ("five", "c5")]
    more = dm_services.message_store_many(sender=users["bob"], conversation=pair, items=items)
    assert [result.inbox_unread for result in more] == [5, 6]
