"""The rooms list stays small however many rooms exist; room and error pages for people who are not members."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.test import override_settings

from dm import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, users):
    client.force_login(users["alice"])
    return client


def names(page: str) -> list[str]:
    return re.findall(r'<li class="card room" data-slug="[^"]+">\s*<a href="[^"]+">([^<]+)</a>', page)


def test_rooms_are_paginated_in_natural_order_and_searchable(alice_client, users):
    for n in range(1, 121):
        services.room_create(creator=users["bob"], name=f"Spam {n}", slug=f"spam-{n}", private=False)
    services.room_create(creator=users["bob"], name="book Club", slug="books", private=False)
    first = alice_client.get("/rooms/").content.decode()
    assert names(first)[:3] == ["book Club", "Spam 1", "Spam 2"]
    assert len(names(first)) == 30
    assert "Page 1 of 5" in first and 'href="?page=2"' in first
    # 120 rooms no longer make a 275 KiB page.
    assert len(first) < 40_000
    last = alice_client.get("/rooms/?page=5").content.decode()
    assert names(last)[-1] == "Spam 120"
    found = alice_client.get("/rooms/?q=spam+11").content.decode()
    assert names(found) == ["Spam 11", "Spam 110", "Spam 111", "Spam 112", "Spam 113", "Spam 114", "Spam 115",
                            "Spam 116", "Spam 117", "Spam 118", "Spam 119"]
    assert 'value="spam 11"' in found
    assert "No room is named like" in alice_client.get("/rooms/?q=zzz").content.decode()
    # Nonsense page numbers show a page, never an error.
    for page in ("0", "-1", "abc", "99999999999", "9"):
        assert alice_client.get(f"/rooms/?page={page}").status_code == 200


def test_a_public_room_you_are_not_in_is_read_only_until_you_join(alice_client, users):
    room = services.room_create(creator=users["bob"], name="General", slug="general", private=False)
    services.message_send(sender=users["bob"], conversation=room, body="hi", client_id=None)
    page = alice_client.get("/rooms/general/").content.decode()
    assert 'data-read-only="true"' in page and 'id="join-room"' in page
    assert 'id="message-input"' not in page and 'id="leave-room"' not in page
    alice_client.post("/rooms/general/join/")
    page = alice_client.get("/rooms/general/").content.decode()
    assert 'data-read-only="false"' in page and 'id="leave-room"' in page
    assert '<script id="chat-members" type="application/json">["alice", "bob"]</script>' in page


def test_only_a_rooms_creator_is_offered_deleting_others_messages(client, users):
    services.room_create(creator=users["bob"], name="General", slug="general", private=False)
    client.force_login(users["alice"])
    client.post("/rooms/general/join/")
    assert 'data-can-moderate="false"' in client.get("/rooms/general/").content.decode()
    client.force_login(users["bob"])
    assert 'data-can-moderate="true"' in client.get("/rooms/general/").content.decode()
    # In a DM nobody may delete the other's messages.
    assert 'data-can-moderate="false"' in client.get("/messages/alice/").content.decode()


def test_a_private_room_shows_a_styled_403_in_the_layout(alice_client, users):
    services.room_create(creator=users["bob"], name="Secret", slug="secret", private=True)
    response = alice_client.get("/rooms/secret/")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'class="card error-page"' in page and "this room is private" in page.lower()
    assert 'id="bell"' in page and 'href="/"' in page


@override_settings(DEBUG=False)
def test_404_and_500_pages_are_styled(alice_client, users):
    response = alice_client.get("/rooms/nowhere/")
    assert response.status_code == 404
    assert 'class="card error-page"' in response.content.decode()
    page = render_to_string("500.html")
    assert "Something went wrong" in page and 'href="/"' in page and 'rel="icon"' in page
