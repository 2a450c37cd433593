"""Group commit: many senders in one room stored by one statement per tick, each still answered in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from dm import services
from dm.models import Message
from social.realtime.protocol import Draft
from tests.conftest import needs_postgres

pytestmark = pytest.mark.django_db(transaction=True)

STORES = [
    pytest.param(False, id="portable"),
    pytest.param(True, id="one-statement", marks=needs_postgres),
]


@pytest.fixture
def members(users, room):
    for name in ("bob", "carol"):
        services.room_join(user=users[name], conversation=room)
    return users


@pytest.mark.parametrize("one_statement", STORES)
def test_a_tick_stores_every_senders_batch_in_order_and_refuses_only_the_one_who_may_not_post(
    members, room, make_user, one_statement, monkeypatch
):
    if not one_statement:
        monkeypatch.setattr(services, "stores_batches_in_one_statement", lambda: False)
    stranger = make_user("stranger")
    existing = services.message_send(sender=members["bob"], conversation=room, body="earlier", client_id="b0")
    submissions = [
        services.Submission(members["alice"], [Draft("a1", "a1"), Draft("a2", "a2")], "alice-socket"),
        services.Submission(stranger, [Draft("not a member", "s1")], "stranger-socket"),
        services.Submission(
            members["bob"],
            [Draft("again", "b0"), Draft("b1", "b1", reply_to=10**9), Draft("b2", "b2", reply_to=existing.message.pk)],
            "bob-socket",
        ),
        services.Submission(members["carol"], [Draft("c1", None)], "carol-socket"),
        # Only a bad reply: invalid in its place, not a refusal to post.
        services.Submission(members["carol"], [Draft("c2", "c2", reply_to=10**9)], "carol-tab"),
    ]
    alice, refused, bob, carol, carol_tab = services.room_messages_store(room, submissions)
    assert [(error.code, error.client_id) for error in carol_tab] == [("invalid", "c2")]

    assert [result.message.body for result in alice] == ["a1", "a2"]
    assert isinstance(refused[0], services.PostingRefused) and len(refused) == 1
    resent, bad_reply, reply = bob
    assert (resent.created, resent.message.pk) == (False, existing.message.pk)
    assert bad_reply.code == "invalid" and bad_reply.client_id == "b1"
    assert reply.created and reply.message.reply_to.pk == existing.message.pk
    assert carol[0].created
    ids = [alice[0].message.pk, alice[1].message.pk, reply.message.pk, carol[0].message.pk]
    assert ids == sorted(ids)
    assert list(Message.objects.order_by("pk").values_list("body", flat=True)) == ["earlier", "a1", "a2", "b2", "c1"]
    # Each new message carries its own announcement, leaving out only its own sender's socket.
    excluded = [result.events[0][1]["exclude_channel"] for result in (alice[0], reply, carol[0])]
    assert excluded == ["alice-socket", "bob-socket", "carol-socket"]
    assert all(message.version == message.pk for message in Message.objects.all())


async def test_many_senders_at_once_each_get_their_echoes_in_order_and_everyone_sees_one_order(
    connect, sockets, cookie_for, users, room, make_user, monkeypatch
):
    ticks = []
    store = services.room_messages_store

    def recording(conversation, submissions):
        ticks.append(len(submissions))
        return store(conversation, submissions)

    monkeypatch.setattr(services, "room_messages_store", recording)
    senders = [await sync_to_async(make_user)(f"sender{n}") for n in range(8)]
    opened = []
    for sender in senders:
        await sync_to_async(services.room_join)(user=sender, conversation=room)
        opened.append(await sockets.open("/ws/rooms/general/", cookie=await sync_to_async(cookie_for)(sender)))
    watcher = await connect("alice", "/ws/rooms/general/")
    for socket in [*opened, watcher]:
        await socket.until_ready()
    per_sender = 12

    async def send_all(index: int, socket: Any) -> list[str]:
        for n in range(per_sender):
            await socket.send({"type": "message", "body": f"{index}:{n}", "client_id": f"{index}-{n}"})
        echoes = []
        while len(echoes) < per_sender:
            frame = await socket.recv_type("message")
            if frame["message"]["sender"]["id"] == senders[index].pk:
                echoes.append(frame["message"]["body"])
        return echoes

    echoed = await asyncio.gather(*(send_all(index, socket) for index, socket in enumerate(opened)))
    assert echoed == [[f"{index}:{n}" for n in range(per_sender)] for index in range(len(senders))]
    seen = [(await watcher.recv_type("message"))["message"] for _ in range(per_sender * len(senders))]
    assert [message["id"] for message in seen] == sorted(message["id"] for message in seen)
    assert len({message["id"] for message in seen}) == len(seen)
    assert await sync_to_async(Message.objects.count)() == len(seen)
    # The senders' batches were stored together, not one socket at a time.
    assert max(ticks) > 1 and sum(ticks) < len(seen)


async def test_a_sender_deactivated_mid_burst_is_refused_while_the_others_are_stored(connect, users, room):
    for name in ("bob", "carol"):
        await sync_to_async(services.room_join)(user=users[name], conversation=room)
    bob = await connect("bob", "/ws/rooms/general/")
    carol = await connect("carol", "/ws/rooms/general/")
    await bob.until_ready()
    await carol.until_ready()
    await sync_to_async(get_user_model().objects.filter(pk=users["carol"].pk).update)(is_active=False)
    for n in range(3):
        await bob.send({"type": "message", "body": f"bob {n}", "client_id": f"b{n}"})
        await carol.send({"type": "message", "body": f"carol {n}", "client_id": f"c{n}"})
    error = await carol.recv_type("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "c0")
    assert await carol.closed_with() == 4401
    bodies = [(await bob.recv_type("message"))["message"]["body"] for _ in range(3)]
    assert bodies == ["bob 0", "bob 1", "bob 2"]
    stored = await sync_to_async(lambda: sorted(Message.objects.values_list("body", flat=True)))()
    assert stored == ["bob 0", "bob 1", "bob 2"]
