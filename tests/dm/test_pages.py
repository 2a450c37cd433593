"""The messaging pages: inbox, DM window, rooms list and room window."""

from __future__ import annotations

import pytest

from dm import changes, selectors, services
from dm.models import Block, Conversation
from social.realtime import protocol

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, users):
    client.force_login(users["alice"])
    return client


@pytest.mark.parametrize("url", ["/messages/", "/messages/bob/", "/rooms/", "/rooms/general/"])
def test_pages_need_login(client, users, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_inbox_lists_conversations_with_unread_and_last_message(alice_client, users):
    pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])
    services.message_send(sender=users["bob"], conversation=pair, body="hello <b>alice</b>", client_id=None)
    page = alice_client.get("/messages/").content.decode()
    assert 'href="/messages/bob/"' in page
    assert "hello &lt;b&gt;alice&lt;/b&gt;" in page
    assert 'class="badge conversation-unread">1' in page


def test_inbox_shows_a_deleted_last_message_as_deleted(alice_client, users):
    pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])
    sent = services.message_send(sender=users["bob"], conversation=pair, body="oops, wrong chat", client_id=None)
    changes.message_change(user=users["bob"], conversation=pair, change=protocol.Change("delete", sent.message.pk))
    page = alice_client.get("/messages/").content.decode()
    assert "bob: <em>message deleted</em>" in page and "oops" not in page
    # Deleted, it is not unread either.
    assert "conversation-unread" not in page


def test_inbox_form_opens_a_conversation(alice_client, users):
    response = alice_client.post("/messages/", {"username": "bob"})
    assert response["Location"] == "/messages/bob/"


@pytest.mark.parametrize("username", ["nobody", "alice", ""])
def test_inbox_form_refuses_unknown_users_and_yourself(alice_client, users, username):
    response = alice_client.post("/messages/", {"username": username})
    assert response.status_code == 400
    assert response.context["form"].errors["username"]


def test_dm_window_has_the_chat_hooks(alice_client, users):
    page = alice_client.get("/messages/bob/").content.decode()
    for hook in (
        'id="chat"',
        'data-ws-path="/ws/dm/bob/"',
        'data-history-url="/api/messages/bob/"',
        'id="message-list"',
        'aria-live="polite"',
        'id="message-input"',
        '<label for="message-input">',
        'id="send-button"',
        'id="typing-indicator"',
        'id="load-older"',
        "js/chat.js",
        'id="block-button"',
    ):
        assert hook in page, hook


def test_dm_window_refusals(alice_client, users):
    assert alice_client.get("/messages/nobody/").status_code == 404
    assert alice_client.get("/messages/alice/").status_code == 403


def test_block_and_unblock_from_the_dm_window(alice_client, users):
    response = alice_client.post("/messages/bob/block/", {"action": "block"})
    assert response["Location"] == "/messages/bob/"
    assert Block.objects.filter(blocker=users["alice"], blocked=users["bob"]).exists()
    page = alice_client.get("/messages/bob/").content.decode()
    assert 'id="unblock-button"' in page and 'id="chat"' not in page
    alice_client.post("/messages/bob/block/", {"action": "unblock"})
    assert not Block.objects.exists()


def test_dm_window_of_someone_who_blocked_you_has_no_chat(alice_client, users):
    Block.objects.create(blocker=users["bob"], blocked=users["alice"])
    page = alice_client.get("/messages/bob/").content.decode()
    assert 'id="blocked-notice"' in page and 'id="chat"' not in page
    assert 'id="block-button"' in page


def test_block_needs_post(alice_client, users):
    assert alice_client.get("/messages/bob/block/").status_code == 405


def test_rooms_page_lists_public_and_own_private_rooms(alice_client, users, add_member):
    services.room_create(creator=users["bob"], name="Open", slug="open", private=False)
    services.room_create(creator=users["bob"], name="Hidden", slug="hidden", private=True)
    mine = services.room_create(creator=users["bob"], name="Ours", slug="ours", private=True)
    add_member(mine, users["alice"])
    page = alice_client.get("/rooms/").content.decode()
    assert "Open" in page and "Ours" in page and "Hidden" not in page
    assert 'action="/rooms/open/join/"' in page


def test_create_room(alice_client, users):
    response = alice_client.post("/rooms/", {"name": "Book club", "slug": "books", "private": "on"})
    assert response["Location"] == "/rooms/books/"
    room = Conversation.objects.get(slug="books")
    assert (room.name, room.private, room.created_by) == ("Book club", True, users["alice"])


@pytest.mark.parametrize(
    "data", [{"name": "", "slug": "x"}, {"name": "X", "slug": "not a slug"}, {"name": "X", "slug": "taken"}]
)
def test_create_room_refuses_bad_input(alice_client, users, data):
    services.room_create(creator=users["bob"], name="Taken", slug="taken", private=False)
    response = alice_client.post("/rooms/", data)
    assert response.status_code == 400
    assert Conversation.objects.count() == 1


def test_room_window_hooks_and_refusals(alice_client, users):
    services.room_create(creator=users["bob"], name="General", slug="general", private=False)
    services.room_create(creator=users["bob"], name="Secret", slug="secret", private=True)
    page = alice_client.get("/rooms/general/").content.decode()
    assert 'data-ws-path="/ws/rooms/general/"' in page and 'id="online-list"' in page
    assert 'data-history-url="/api/rooms/general/messages/"' in page
    assert alice_client.get("/rooms/secret/").status_code == 403
    assert alice_client.get("/rooms/nowhere/").status_code == 404


def test_join_and_leave_a_room(alice_client, users):
    room = services.room_create(creator=users["bob"], name="General", slug="general", private=False)
    assert alice_client.post("/rooms/general/join/")["Location"] == "/rooms/general/"
    assert selectors.is_member(conversation_id=room.pk, user_id=users["alice"].pk)
    assert alice_client.post("/rooms/general/leave/")["Location"] == "/rooms/"
    assert not selectors.is_member(conversation_id=room.pk, user_id=users["alice"].pk)


def test_private_room_cannot_be_joined_by_post(alice_client, users):
    services.room_create(creator=users["bob"], name="Secret", slug="secret", private=True)
    assert alice_client.post("/rooms/secret/join/").status_code == 403


def test_creator_invites_and_removes_members(alice_client, users):
    room = services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)
    page = alice_client.get("/rooms/secret/").content.decode()
    assert 'id="invite-form"' in page
    alice_client.post("/rooms/secret/members/", {"username": "bob"})
    assert not selectors.is_member(conversation_id=room.pk, user_id=users["bob"].pk)
    services.room_invitation_accept(user=users["bob"], room=room)
    assert 'action="/rooms/secret/members/bob/remove/"' in alice_client.get("/rooms/secret/").content.decode()
    alice_client.post("/rooms/secret/members/bob/remove/")
    assert not selectors.is_member(conversation_id=room.pk, user_id=users["bob"].pk)
    assert alice_client.post("/rooms/secret/members/carol/remove/").status_code == 404


def test_only_the_creator_manages_members(client, users, add_member):
    room = services.room_create(creator=users["alice"], name="Secret", slug="secret", private=True)
    add_member(room, users["bob"])
    client.force_login(users["bob"])
    assert client.post("/rooms/secret/members/", {"username": "carol"}).status_code == 403
    assert client.post("/rooms/secret/members/alice/remove/").status_code == 403
    assert not selectors.is_member(conversation_id=room.pk, user_id=users["carol"].pk)
