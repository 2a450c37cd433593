"""Messages that change, on the chat sockets: edit, delete, react, replies, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dm import changes, services
from dm.models import Message, Reaction
from social.realtime.groups import user_group

pytestmark = pytest.mark.django_db(transaction=True)


async def pair_sockets(connect: Any) -> tuple[Any, Any]:
    alice = await connect("alice", "/ws/dm/bob/")
    bob = await connect("bob", "/ws/dm/alice/")
    await alice.until_ready()
    await bob.until_ready()
    return alice, bob


async def say(socket: Any, others: list[Any], body: str, **extra: Any) -> dict[str, Any]:
    """Send a message and read its echo and its delivery to the others: the message object."""
    await socket.send({"type": "message", "body": body, **extra})
    echo = await socket.recv_type("message")
    for other in others:
        assert (await other.recv_type("message"))["message"]["id"] == echo["message"]["id"]
    return echo["message"]


async def stored(pk: int) -> Message:
    return await sync_to_async(Message.objects.get)(pk=pk)


async def test_an_edit_reaches_every_socket_with_a_higher_version(connect, users):
    alice, bob = await pair_sockets(connect)
    original = await say(alice, [bob], "helo")
    await alice.send({"type": "edit", "message_id": original["id"], "body": " hello "})
    update = await alice.recv()
    assert update == await bob.recv()
    assert update["type"] == "message_update"
    edited = update["message"]
    assert (edited["id"], edited["body"]) == (original["id"], "hello")
    assert edited["version"] > original["version"] == original["id"]
    assert edited["edited_at"] is not None and edited["created_at"] == original["created_at"]
    assert (await stored(original["id"])).body == "hello"


async def test_editing_to_the_same_body_changes_and_sends_nothing(connect, users):
    alice, bob = await pair_sockets(connect)
    original = await say(alice, [bob], "same")
    await alice.send({"type": "edit", "message_id": original["id"], "body": "same  "})
    assert await alice.silent() and await bob.silent()
    assert (await stored(original["id"])).version == original["version"]


async def test_editing_someone_elses_message_is_forbidden_and_the_socket_stays_open(connect, users):
    alice, bob = await pair_sockets(connect)
    original = await say(alice, [bob], "mine")
    await bob.send({"type": "edit", "message_id": original["id"], "body": "yours now"})
    error = await bob.recv()
    assert (error["code"], error["message_id"]) == ("forbidden", original["id"])
    assert (await stored(original["id"])).body == "mine"
    assert (await say(bob, [alice], "still here"))["body"] == "still here"


async def test_a_deleted_message_cannot_be_edited_or_reacted_to(connect, users):
    alice, bob = await pair_sockets(connect)
    original = await say(alice, [bob], "soon gone")
    await alice.send({"type": "delete", "message_id": original["id"]})
    await alice.recv_type("message_update")
    await bob.recv_type("message_update")
    for frame in (
        {"type": "edit", "message_id": original["id"], "body": "back"},
        {"type": "react", "message_id": original["id"], "emoji": "👍"},
    ):
        await alice.send(frame)
        error = await alice.recv()
        assert (error["code"], error["message_id"]) == ("forbidden", original["id"])
    message = await stored(original["id"])
    assert (message.deleted, message.body) == (True, "")
    assert not await sync_to_async(Reaction.objects.exists)()


async def test_a_message_of_another_conversation_is_invalid_and_untouched(connect, users, room):
    alice, bob = await pair_sockets(connect)
    elsewhere = await sync_to_async(services.message_send)(
        sender=users["alice"], conversation=room, body="in the room", client_id=None
    )
    for frame in (
        {"type": "edit", "message_id": elsewhere.message.pk, "body": "x"},
        {"type": "delete", "message_id": elsewhere.message.pk},
        {"type": "react", "message_id": elsewhere.message.pk, "emoji": "👍"},
        {"type": "edit", "message_id": 10**12, "body": "x"},
    ):
        await alice.send(frame)
        error = await alice.recv()
        assert (error["code"], error["message_id"]) == ("invalid", frame["message_id"])
    message = await stored(elsewhere.message.pk)
    assert (message.body, message.deleted, message.version) == ("in the room", False, elsewhere.message.pk)
    assert await bob.silent()


async def test_a_delete_leaves_a_tombstone_and_deleting_twice_is_a_no_op(connect, users):
    alice, bob = await pair_sockets(connect)
    original = await say(alice, [bob], "oops")
    await bob.send({"type": "react", "message_id": original["id"], "emoji": "😂"})
    await alice.recv_type("message_update")
    await bob.recv_type("message_update")
    await alice.send({"type": "delete", "message_id": original["id"]})
    tombstone = (await bob.recv_type("message_update"))["message"]
    assert (await alice.recv_type("message_update"))["message"] == tombstone
    assert (tombstone["deleted"], tombstone["body"], tombstone["reactions"]) == (True, "", [])
    await alice.send({"type": "delete", "message_id": original["id"]})
    assert await alice.silent() and await bob.silent()
    history = await sync_to_async(lambda: list(Message.objects.values_list("pk", "deleted", "body")))()
    assert history == [(original["id"], True, "")]


async def test_a_room_owner_may_delete_anyones_message_and_a_member_may_not(connect, users, room):
    await sync_to_async(services.room_join)(user=users["bob"], conversation=room)
    await sync_to_async(services.room_join)(user=users["carol"], conversation=room)
    alice = await connect("alice", "/ws/rooms/general/")
    bob = await connect("bob", "/ws/rooms/general/")
    carol = await connect("carol", "/ws/rooms/general/")
    for socket in (alice, bob, carol):
        await socket.until_ready()
    message = await say(bob, [alice, carol], "spam")
    await carol.send({"type": "delete", "message_id": message["id"]})
    error = await carol.recv_type("error")
    assert (error["code"], error["message_id"]) == ("forbidden", message["id"])
    await alice.send({"type": "delete", "message_id": message["id"]})
    assert (await carol.recv_type("message_update"))["message"]["deleted"] is True
    assert (await bob.recv_type("message_update"))["message"]["deleted"] is True


async def test_reactions_toggle_and_count_each_user_once_in_order_of_first_use(connect, users):
    alice, bob = await pair_sockets(connect)
    message = await say(alice, [bob], "react to me")

    async def react(socket: Any, emoji: str) -> dict[str, Any]:
        await socket.send({"type": "react", "message_id": message["id"], "emoji": emoji})
        update = (await alice.recv_type("message_update"))["message"]
        assert (await bob.recv_type("message_update"))["message"] == update
        return update

    await react(bob, "👍")
    await react(alice, "🎉")
    both = await react(alice, "👍")
    assert both["reactions"] == [
        {"emoji": "👍", "count": 2, "users": [users["bob"].pk, users["alice"].pk]},
        {"emoji": "🎉", "count": 1, "users": [users["alice"].pk]},
    ]
    toggled_off = await react(bob, "👍")
    # Ordered by first use among the reactions there are now: alice's 👍 came after her 🎉.
    assert toggled_off["reactions"] == [
        {"emoji": "🎉", "count": 1, "users": [users["alice"].pk]},
        {"emoji": "👍", "count": 1, "users": [users["alice"].pk]},
    ]
    assert toggled_off["version"] > both["version"]
    gone = await react(alice, "👍")
    assert gone["reactions"] == [{"emoji": "🎉", "count": 1, "users": [users["alice"].pk]}]


@pytest.mark.parametrize("emoji", ["ok", "👍👍", "", " 👍", "🙂" * 9, 7, None])
async def test_a_reaction_that_is_not_one_emoji_is_invalid(connect, users, emoji):
    alice, bob = await pair_sockets(connect)
    message = await say(alice, [bob], "hi")
    await bob.send({"type": "react", "message_id": message["id"], "emoji": emoji})
    error = await bob.recv()
    assert (error["code"], error["message_id"]) == ("invalid", message["id"])
    assert not await sync_to_async(Reaction.objects.exists)()


async def test_the_21st_distinct_emoji_is_refused_and_existing_ones_still_toggle(connect, users, settings):
    # 22 frames from alice at once: past the flood limit's burst on a fast machine, which is not what is tested.
    settings.REALTIME = {**settings.REALTIME, "RATE_BURST": 100}
    alice, bob = await pair_sockets(connect)
    message = await say(alice, [bob], "hi")
    twenty = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗", "😙",
              "😚", "🙂", "🤗"]
    for emoji in twenty:
        await alice.send({"type": "react", "message_id": message["id"], "emoji": emoji})
        await alice.recv_type("message_update")
    await bob.send({"type": "react", "message_id": message["id"], "emoji": "🤩"})
    error = await bob.recv_type("error")
    assert (error["code"], error["message_id"]) == ("invalid", message["id"])
    await bob.send({"type": "react", "message_id": message["id"], "emoji": "😀"})
    update = (await bob.recv_type("message_update"))["message"]
    assert len(update["reactions"]) == 20 and update["reactions"][0]["count"] == 2


async def test_a_reaction_lists_at_most_50_users_and_counts_them_all(users, make_user):
    pair = await sync_to_async(services.direct_conversation_get_or_create)(user_a=users["alice"], user_b=users["bob"])
    sent = await sync_to_async(services.message_send)(
        sender=users["alice"], conversation=pair, body="x", client_id=None
    )
    others = [await sync_to_async(make_user)(f"fan{n}") for n in range(55)]
    await sync_to_async(Reaction.objects.bulk_create)(
        [Reaction(message=sent.message, user=user, emoji="👍") for user in others]
    )
    summary = await sync_to_async(changes.reactions_summary)(sent.message.pk)
    assert summary == [{"emoji": "👍", "count": 55, "users": [user.pk for user in others[:50]]}]


async def test_a_reply_quotes_its_original_and_follows_its_edit_and_delete(connect, users):
    alice, bob = await pair_sockets(connect)
    original = await say(alice, [bob], "x" * 200)
    reply = await say(bob, [alice], "answer", reply_to=original["id"])
    assert reply["reply_to"] == {
        "id": original["id"], "sender": original["sender"], "excerpt": "x" * 140, "deleted": False,
    }
    await alice.send({"type": "edit", "message_id": original["id"], "body": "short"})
    updates = [(await bob.recv_type("message_update"))["message"] for _ in range(2)]
    assert [update["id"] for update in updates] == [original["id"], reply["id"]]
    assert updates[1]["reply_to"]["excerpt"] == "short" and updates[1]["version"] > updates[0]["version"]
    await alice.send({"type": "delete", "message_id": original["id"]})
    await bob.recv_type("message_update")
    quoted = (await bob.recv_type("message_update"))["message"]["reply_to"]
    assert (quoted["deleted"], quoted["excerpt"]) == (True, "")


async def test_a_reply_to_another_conversations_message_is_invalid_in_its_place(connect, users, room):
    alice, bob = await pair_sockets(connect)
    elsewhere = await sync_to_async(services.message_send)(
        sender=users["alice"], conversation=room, body="room", client_id=None
    )
    await alice.send({"type": "message", "body": "one", "client_id": "a"})
    await alice.send({"type": "message", "body": "two", "client_id": "b", "reply_to": elsewhere.message.pk})
    await alice.send({"type": "message", "body": "three", "client_id": "c"})
    answers = [await alice.recv() for _ in range(3)]
    assert [answer.get("client_id") or answer["message"]["client_id"] for answer in answers] == ["a", "b", "c"]
    assert answers[1]["type"] == "error" and answers[1]["code"] == "invalid"
    bodies = await sync_to_async(lambda: sorted(Message.objects.values_list("body", flat=True)))()
    assert bodies == ["one", "room", "three"]


async def test_a_deleted_dm_no_longer_counts_in_the_recipients_inbox(connect, users, listen):
    alice, bob = await pair_sockets(connect)
    inbox = await listen(user_group(users["bob"].pk))
    message = await say(alice, [bob], "unread")
    assert (await inbox())["unread"] == 1
    await alice.send({"type": "delete", "message_id": message["id"]})
    assert (await inbox())["unread"] == 0
