"""The conversation parts of the JSON API: shapes, cursors and every error path."""

from __future__ import annotations

import pytest

from dm import selectors, services
from dm.models import Block, Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, users):
    client.force_login(users["alice"])
    return client


@pytest.fixture
def pair(users):
    return services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def say(users, conversation, name, count):
    return [
        services.message_send(sender=users[name], conversation=conversation, body=f"m{n}", client_id=None).message.pk
        for n in range(count)
    ]


@pytest.mark.parametrize("url", ["/api/conversations/", "/api/messages/bob/", "/api/rooms/general/messages/"])
def test_anonymous_gets_401_json(client, users, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response.json() == {"error": "not logged in"}


def test_post_is_not_allowed(alice_client):
    response = alice_client.post("/api/conversations/")
    assert response.status_code == 405
    assert "error" in response.json()


def test_dm_history_pages_back_oldest_first(alice_client, users, pair):
    ids = say(users, pair, "bob", 5)
    newest = alice_client.get("/api/messages/bob/?limit=2").json()
    assert [m["id"] for m in newest["results"]] == ids[3:]
    assert newest["has_more"] is True
    older = alice_client.get(f"/api/messages/bob/?limit=2&before={ids[3]}").json()
    assert [m["id"] for m in older["results"]] == ids[1:3]
    oldest = alice_client.get(f"/api/messages/bob/?before={ids[1]}").json()
    assert [m["id"] for m in oldest["results"]] == ids[:1]
    assert oldest["has_more"] is False
    message = newest["results"][-1]
    assert set(message) == {
        "id", "conversation", "sender", "body", "created_at", "client_id",
        "version", "edited_at", "deleted", "reactions", "reply_to",
    }
    assert message["version"] == message["id"] and message["reply_to"] is None
    assert message["sender"] == {"id": users["bob"].pk, "username": "bob"}


def test_reading_history_does_not_move_the_read_marker(alice_client, users, pair):
    say(users, pair, "bob", 2)
    alice_client.get("/api/messages/bob/")
    assert Membership.objects.get(conversation=pair, user=users["alice"]).last_read_id == 0


def test_dm_history_with_no_messages_is_empty(alice_client, users):
    assert alice_client.get("/api/messages/carol/").json() == {"results": [], "has_more": False}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "before=0",
        "before=x",
        "before=-5",
        "before=1.5",
        "before=99999999999999999999",
        "limit=٣",
    ],
)
def test_bad_parameters_are_400(alice_client, users, query):
    services.room_create(creator=users["bob"], name="G", slug="general", private=False)
    for url in ("/api/messages/bob/", "/api/rooms/general/messages/"):
        response = alice_client.get(f"{url}?{query}")
        assert response.status_code == 400, (url, query)
        assert set(response.json()) == {"error"}


def test_dm_with_unknown_user_is_404(alice_client):
    response = alice_client.get("/api/messages/nobody/")
    assert response.status_code == 404
    assert "error" in response.json()


def test_dm_with_yourself_is_403(alice_client):
    assert alice_client.get("/api/messages/alice/").status_code == 403


@pytest.mark.parametrize("blocker", ["alice", "bob"])
def test_dm_history_of_a_blocked_pair_is_403(alice_client, users, pair, blocker):
    other = "bob" if blocker == "alice" else "alice"
    Block.objects.create(blocker=users[blocker], blocked=users[other])
    assert alice_client.get("/api/messages/bob/").status_code == 403


def test_room_history_unknown_room_is_404(alice_client):
    assert alice_client.get("/api/rooms/nowhere/messages/").status_code == 404


def test_private_room_history_is_403_for_non_members(alice_client, users, add_member):
    room = services.room_create(creator=users["bob"], name="S", slug="secret", private=True)
    say(users, room, "bob", 1)
    response = alice_client.get("/api/rooms/secret/messages/")
    assert response.status_code == 403
    assert "error" in response.json()
    add_member(room, users["alice"])
    assert len(alice_client.get("/api/rooms/secret/messages/").json()["results"]) == 1


def test_public_room_history_is_readable_and_hides_blocked_senders(alice_client, users):
    room = services.room_create(creator=users["bob"], name="G", slug="general", private=False)
    services.room_join(user=users["carol"], conversation=room)
    say(users, room, "bob", 1)
    say(users, room, "carol", 1)
    Block.objects.create(blocker=users["alice"], blocked=users["bob"])
    results = alice_client.get("/api/rooms/general/messages/").json()["results"]
    assert [m["sender"]["username"] for m in results] == ["carol"]


def test_conversations_shape_and_order(alice_client, users, pair):
    room = services.room_create(creator=users["bob"], name="General", slug="general", private=False)
    services.room_join(user=users["alice"], conversation=room)
    say(users, room, "bob", 1)
    ids = say(users, pair, "bob", 2)
    results = alice_client.get("/api/conversations/").json()["results"]
    assert results[0] == {
        "id": pair.pk,
        "kind": "direct",
        "title": "bob",
        "url": "/messages/bob/",
        "unread": 2,
        "last_message": results[0]["last_message"],
        "muted": False,
    }
    assert results[0]["last_message"]["id"] == ids[-1]
    assert (results[1]["kind"], results[1]["title"], results[1]["url"], results[1]["unread"]) == (
        "room",
        "General",
        "/rooms/general/",
        1,
    )


def test_the_last_message_in_the_list_is_the_message_the_history_shows(alice_client, users, pair):
    """The list reads its rows by hand (dm.selectors): every field, as JSON, as the history
    API serialises the same message (booleans, times, reactions, the reply and its deleted original)."""
    import json

    from dm import changes
    from social.realtime import protocol

    question = services.message_send(sender=users["bob"], conversation=pair, body="question?", client_id=None)
    answer = services.message_send(
        sender=users["alice"], conversation=pair, body="answer", client_id="c-1", reply_to=question.message
    )
    for change in (
        protocol.Change("edit", answer.message.pk, body="answer, edited"),
        protocol.Change("react", answer.message.pk, emoji="\N{THUMBS UP SIGN}"),
    ):
        changes.message_change(user=users["alice"], conversation=pair, change=change)
    changes.message_change(user=users["bob"], conversation=pair, change=protocol.Change("delete", question.message.pk))
    history = alice_client.get("/api/messages/bob/").json()["results"]
    (entry,) = alice_client.get("/api/conversations/").json()["results"]
    assert json.dumps(entry["last_message"], sort_keys=True) == json.dumps(history[-1], sort_keys=True)
    assert entry["last_message"]["edited_at"] and entry["last_message"]["reactions"]
    assert entry["last_message"]["reply_to"]["deleted"] is True
    assert (entry["muted"], entry["unread"]) == (False, 0)


def test_history_read_by_hand_serialises_as_the_orm_loads_the_messages(alice_client, users, pair):
    """The pages, replays and the list read messages by hand (dm.selectors): each message, as JSON,
    as the ORM's model instance of it serialises (edited, reacted, a reply to a deleted message)."""
    import json

    from dm import changes, selectors
    from dm.models import Message
    from social.realtime import protocol

    question = services.message_send(sender=users["bob"], conversation=pair, body="question?", client_id=None)
    answer = services.message_send(
        sender=users["alice"], conversation=pair, body="answer", client_id="c-1", reply_to=question.message
    )
    plain = services.message_send(sender=users["bob"], conversation=pair, body="plain", client_id="c-2")
    for change in (
        protocol.Change("edit", answer.message.pk, body="answer, edited"),
        protocol.Change("react", answer.message.pk, emoji="\N{THUMBS UP SIGN}"),
    ):
        changes.message_change(user=users["alice"], conversation=pair, change=change)
    changes.message_change(user=users["bob"], conversation=pair, change=protocol.Change("delete", question.message.pk))
    ids = [question.message.pk, answer.message.pk, plain.message.pk]
    loaded = Message.objects.select_related("sender", "reply_to__sender").in_bulk(ids)
    expected = [json.dumps(protocol.message_dict(loaded[pk]), sort_keys=True) for pk in ids]
    pages = (
        selectors.messages_before(conversation_id=pair.pk, before_id=None, limit=10)[0],
        selectors.messages_after(conversation_id=pair.pk, after_id=0, limit=10)[0],
    )
    for page in pages:
        assert [json.dumps(protocol.message_dict(m), sort_keys=True) for m in page] == expected
    since = selectors.messages_since(conversation_id=pair.pk, since_version=0, limit=10)[0]
    assert sorted(json.dumps(protocol.message_dict(m), sort_keys=True) for m in since) == sorted(expected)
    assert json.loads(expected[1])["reply_to"]["deleted"] is True


def test_conversations_only_lists_your_own(client, users, pair):
    say(users, pair, "bob", 1)
    client.force_login(users["carol"])
    assert client.get("/api/conversations/").json() == {"results": []}


def test_the_conversation_list_costs_its_queries_not_one_per_conversation(
    alice_client, users, make_user, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def list_queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as queries:
            results = alice_client.get("/api/conversations/").json()["results"]
        return len(queries), results

    def talk_to(name):
        pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=make_user(name))
        services.message_send(sender=users["alice"], conversation=pair, body=f"hi {name}", client_id=None)

    talk_to("dave")
    baseline, _ = list_queries()
    for name in ("erin", "frank", "grace", "heidi"):
        talk_to(name)
    count, results = list_queries()
    assert count == baseline
    assert [(entry["title"], entry["url"]) for entry in results] == [
        (name, f"/messages/{name}/") for name in ("heidi", "grace", "frank", "erin", "dave")
    ]
    with django_assert_num_queries(1):  # the memberships with their peers, unread counts and last messages
        selectors.conversation_list(user_id=users["alice"].pk)


def test_a_history_page_with_replies_costs_its_queries_not_one_per_message(alice_client, users, pair):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    question = services.message_send(sender=users["bob"], conversation=pair, body="question?", client_id=None)

    def page_queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as queries:
            results = alice_client.get("/api/messages/bob/").json()["results"]
        return len(queries), results

    baseline, _ = page_queries()
    for n in range(5):
        services.message_send(
            sender=users["alice"], conversation=pair, body=f"answer {n}", client_id=None, reply_to=question.message
        )
    count, results = page_queries()
    assert count == baseline
    assert results[-1]["sender"] == {"id": users["alice"].pk, "username": "alice"}
    assert results[-1]["reply_to"] == {
        "id": question.message.pk,
        "sender": {"id": users["bob"].pk, "username": "bob"},
        "excerpt": "question?",
        "deleted": False,
    }
