"""Changes that land at awkward moments: between a resume's group join and its read, while a reply
waits for the lock, after access was lost; and resends and lists that must not cost more queries."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dm import changes, selectors, services
from dm.models import Message
from social.realtime import protocol

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(users: dict[str, Any]) -> Any:
    return services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def edit(users: dict[str, Any], conversation: Any, message_id: int, body: str) -> None:
    changes.message_change(
        user=users["alice"], conversation=conversation, change=protocol.Change("edit", message_id, body=body)
    )


async def test_a_change_committed_between_the_group_join_and_the_replay_arrives_once(
    connect, users, pair, monkeypatch
):
    sent = await sync_to_async(services.message_send)(
        sender=users["alice"], conversation=pair, body="before", client_id=None
    )
    read = selectors.messages_since

    def edited_first(**kwargs: Any) -> Any:
        # The socket is in its group already: this edit's live copy is queued for it too.
        edit(users, pair, sent.message.pk, "during the resume")
        return read(**kwargs)

    monkeypatch.setattr(selectors, "messages_since", edited_first)
    bob = await connect("bob", f"/ws/dm/alice/?since={sent.message.pk}")
    replay, _ = await bob.until_ready()
    assert [(frame["type"], frame["message"]["body"]) for frame in replay] == [("message_update", "during the resume")]
    assert await bob.silent(0.3)


async def test_a_reply_whose_original_is_deleted_while_it_waits_quotes_the_tombstone(
    connect, users, pair, monkeypatch
):
    original = await sync_to_async(services.message_send)(
        sender=users["alice"], conversation=pair, body="soon deleted", client_id=None
    )
    targets = services.reply_targets

    def read_then_deleted(conversation: Any, drafts: Any) -> Any:
        found = targets(conversation, drafts)
        changes.message_change(
            user=users["alice"], conversation=pair, change=protocol.Change("delete", original.message.pk)
        )
        return found

    monkeypatch.setattr(services, "reply_targets", read_then_deleted)
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    await alice.send({"type": "message", "body": "replying", "client_id": "r", "reply_to": original.message.pk})
    while (frame := await alice.recv())["type"] != "message":
        pass
    assert frame["message"]["reply_to"]["deleted"] is True and frame["message"]["reply_to"]["excerpt"] == ""


async def test_a_resent_reply_is_echoed_from_the_store_with_its_quote(connect, users, pair):
    original = await sync_to_async(services.message_send)(
        sender=users["bob"], conversation=pair, body="question", client_id=None
    )
    alice = await connect("alice", "/ws/dm/bob/")
    await alice.until_ready()
    frame = {"type": "message", "body": "answer", "client_id": "once", "reply_to": original.message.pk}
    await alice.send(frame)
    first = await alice.recv()
    await alice.send(frame)
    again = await alice.recv()
    assert again["message"] == first["message"] and again["message"]["reply_to"]["excerpt"] == "question"
    assert await sync_to_async(Message.objects.filter(client_id="once").count)() == 1


def test_a_user_no_longer_in_the_room_cannot_change_its_messages(users, room):
    services.room_join(user=users["bob"], conversation=room)
    sent = services.message_send(sender=users["bob"], conversation=room, body="mine", client_id=None)
    services.room_leave(user=users["bob"], conversation=room)
    with pytest.raises(services.PostingRefused):
        changes.message_change(
            user=users["bob"], conversation=room, change=protocol.Change("edit", sent.message.pk, body="changed")
        )
    assert Message.objects.get(pk=sent.message.pk).body == "mine"


def test_the_conversation_list_costs_the_same_queries_with_replies_as_without(users, make_user):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            selectors.conversation_list(user_id=users["alice"].pk)
        return len(queries)

    first = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])
    services.message_send(sender=users["bob"], conversation=first, body="plain", client_id=None)
    baseline = list_queries()
    for n in range(3):
        other = make_user(f"friend{n}")
        pair = services.direct_conversation_get_or_create(user_a=users["alice"], user_b=other)
        question = services.message_send(sender=other, conversation=pair, body="q", client_id=None)
        services.message_send(
            sender=users["alice"], conversation=pair, body="a", client_id=None, reply_to=question.message
        )
    assert list_queries() == baseline
