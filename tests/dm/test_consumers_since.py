"""Resume by version: ``?since=`` replays each changed or new message once, in its current state."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dm import changes, services
from dm.models import Block
from social.realtime import protocol

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pair(users: dict[str, Any]) -> Any:
    return services.direct_conversation_get_or_create(user_a=users["alice"], user_b=users["bob"])


def send(users: dict[str, Any], conversation: Any, name: str, body: str) -> int:
    return services.message_send(sender=users[name], conversation=conversation, body=body, client_id=None).message.pk


asend = sync_to_async(send)


def change(users: dict[str, Any], conversation: Any, name: str, kind: str, message_id: int, **fields: Any) -> None:
    changes.message_change(
        user=users[name], conversation=conversation, change=protocol.Change(kind, message_id, **fields)
    )


async def test_a_client_that_missed_changes_gets_each_message_once_in_its_final_state(connect, users, pair):
    first, second = await asend(users, pair, "alice", "one"), await asend(users, pair, "bob", "two")
    seen = second  # the client had both, at versions equal to their ids

    def while_away() -> int:
        change(users, pair, "alice", "edit", first, body="one, edited")
        change(users, pair, "alice", "react", second, emoji="👍")
        third = send(users, pair, "bob", "three")
        change(users, pair, "bob", "edit", third, body="three, edited")
        change(users, pair, "alice", "edit", first, body="one, edited twice")
        change(users, pair, "bob", "delete", second)
        return third

    third = await sync_to_async(while_away)()
    alice = await connect("alice", f"/ws/dm/bob/?since={seen}")
    replay, ready = await alice.until_ready()
    assert "truncated" not in ready
    assert [(frame["type"], frame["message"]["id"]) for frame in replay] == [
        ("message", third),
        ("message_update", first),
        ("message_update", second),
    ]
    versions = [frame["message"]["version"] for frame in replay]
    assert versions == sorted(versions) and versions[0] > seen
    by_id = {frame["message"]["id"]: frame["message"] for frame in replay}
    assert by_id[first]["body"] == "one, edited twice"
    assert (by_id[second]["deleted"], by_id[second]["reactions"]) == (True, [])
    assert (by_id[third]["body"], by_id[third]["edited_at"] is not None) == ("three, edited", True)
    # Resuming again from the newest version replays nothing.
    again = await connect("alice", f"/ws/dm/bob/?since={versions[-1]}")
    assert (await again.until_ready())[0] == []


async def test_since_zero_replays_everything_as_new_messages(connect, users, pair):
    ids = [await asend(users, pair, "alice", f"m{n}") for n in range(3)]
    alice = await connect("alice", "/ws/dm/bob/?since=0")
    replay, _ = await alice.until_ready()
    assert [(frame["type"], frame["message"]["id"]) for frame in replay] == [("message", pk) for pk in ids]


async def test_since_wins_over_after(connect, users, pair):
    first = await asend(users, pair, "alice", "one")
    await asend(users, pair, "alice", "two")
    await sync_to_async(change)(users, pair, "alice", "edit", first, body="one!")
    alice = await connect("alice", f"/ws/dm/bob/?after={first}&since={first + 1}")
    replay, _ = await alice.until_ready()
    assert [(frame["type"], frame["message"]["body"]) for frame in replay] == [("message_update", "one!")]


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", "9" * 20])
async def test_a_malformed_since_is_an_error_then_a_plain_connect(connect, users, pair, since):
    await asend(users, pair, "alice", "hi")
    alice = await connect("alice", f"/ws/dm/bob/?since={since}")
    error = await alice.recv()
    assert (error["type"], error["code"]) == ("error", "invalid") and "since" in error["message"]
    assert (await alice.recv())["type"] == "ready"


async def test_a_since_ahead_of_the_conversation_says_reload_and_replays_nothing(connect, users, pair):
    newest = await asend(users, pair, "alice", "hi")
    alice = await connect("alice", f"/ws/dm/bob/?since={newest + 1000}")
    error = await alice.recv()
    assert (error["code"], str(newest) in error["message"]) == ("invalid", True)
    replay, _ = await alice.until_ready()
    assert replay == []
    await alice.send({"type": "message", "body": "still works"})
    assert (await alice.recv())["message"]["body"] == "still works"


async def test_more_than_the_limit_replays_the_newest_versions_and_says_truncated(connect, users, pair, settings):
    settings.REALTIME = {**settings.REALTIME, "RESUME_LIMIT": 2}
    ids = [await asend(users, pair, "alice", f"m{n}") for n in range(3)]
    await sync_to_async(change)(users, pair, "alice", "edit", ids[0], body="edited")
    alice = await connect("alice", "/ws/dm/bob/?since=0")
    replay, ready = await alice.until_ready()
    assert ready["truncated"] is True
    assert [frame["message"]["id"] for frame in replay] == [ids[2], ids[0]]


async def test_a_room_replay_by_version_leaves_out_users_the_reader_blocked(connect, users, room):
    def setup() -> tuple[int, int]:
        services.room_join(user=users["bob"], conversation=room)
        services.room_join(user=users["carol"], conversation=room)
        Block.objects.create(blocker=users["alice"], blocked=users["carol"])
        return send(users, room, "bob", "visible"), send(users, room, "carol", "hidden")

    visible, hidden = await sync_to_async(setup)()
    await sync_to_async(change)(users, room, "carol", "edit", hidden, body="still hidden")
    alice = await connect("alice", "/ws/rooms/general/?since=0")
    replay, _ = await alice.until_ready()
    assert [frame["message"]["id"] for frame in replay] == [visible]
