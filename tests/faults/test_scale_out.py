"""Several daphne processes on one Redis and one database: everything crosses processes."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from dm.models import Message
from social.models import Comment, Post
from tests.faults.conftest import GENEROUS_LIMITS, needs_shared_layer
from tests.support.clients import WsClient
from tests.support.http import Browserish

pytestmark = [pytest.mark.django_db(transaction=True), needs_shared_layer]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def people(make_user, cookie_for):
    users = {name: make_user(name) for name in ("alice", "bob", "carol")}
    return users, {name: cookie_for(user) for name, user in users.items()}


async def ready(server, path, cookie):
    client = await WsClient.open(server, path, cookie=cookie)
    replay, ready_frame = await client.until_ready()
    return client, replay, ready_frame


async def test_dms_rooms_presence_and_notifications_cross_processes(two_servers, people, make_room):
    a, b = two_servers
    users, cookies = people
    await sync_to_async(make_room)("lobby", users["alice"], users["bob"])
    alice_dm, _, _ = await ready(a, "/ws/dm/bob/", cookies["alice"])
    bob_dm, _, _ = await ready(b, "/ws/dm/alice/", cookies["bob"])
    bob_bell, _, _ = await ready(b, "/ws/notifications/", cookies["bob"])

    for n in range(5):
        await alice_dm.send({"type": "message", "body": f"a{n}", "client_id": f"a{n}"})
    received = [(await bob_dm.recv_type("message"))["message"]["body"] for _ in range(5)]
    assert received == [f"a{n}" for n in range(5)]
    inbox = await bob_bell.recv_type("inbox")
    assert inbox["conversation"] == (await alice_dm.recv_type("message"))["message"]["conversation"]

    await bob_dm.send({"type": "message", "body": "hi alice", "client_id": "b0"})
    while (frame := await alice_dm.recv_type("message"))["message"]["body"] != "hi alice":
        pass

    alice_room, _, room_ready = await ready(a, "/ws/rooms/lobby/", cookies["alice"])
    bob_room, _, bob_ready = await ready(b, "/ws/rooms/lobby/", cookies["bob"])
    assert (await alice_room.recv_type("join"))["user"]["username"] == "bob"
    assert {u["username"] for u in bob_ready["online"]} == {"alice", "bob"}
    await bob_room.send({"type": "message", "body": "room hello"})
    assert (await alice_room.recv_type("message"))["message"]["body"] == "room hello"
    await bob_room.close()
    assert (await alice_room.recv_type("leave"))["user"]["username"] == "bob"
    assert frame


async def test_comment_on_a_notifies_b_and_notify_command_reaches_every_tab(two_servers, people):
    a, b = two_servers
    users, cookies = people
    post = await sync_to_async(Post.objects.create)(author=users["alice"], title="Scale", body="out")
    alice_on_a, _, _ = await ready(a, "/ws/notifications/", cookies["alice"])
    alice_on_b, _, _ = await ready(b, "/ws/notifications/", cookies["alice"])

    bob = Browserish(a, cookies["bob"])
    status, _ = await sync_to_async(bob.post_form)(f"/posts/{post.pk}/", {"body": "from process A"})
    assert status == 302
    frame = (await alice_on_b.recv_type("notification"))["notification"]
    assert frame["kind"] == "comment" and frame["actor"]["username"] == "bob"
    assert (await alice_on_a.recv_type("notification"))["notification"]["id"] == frame["id"]

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": a.env["DATABASE_URL"]}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "notify", "alice", "Deploy finished"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for tab in (alice_on_a, alice_on_b):
        pushed = await tab.recv_type("notification")
        assert pushed["notification"]["text"] == "Deploy finished" and pushed["notification"]["kind"] == "system"


async def test_killed_process_loses_nothing_for_reconnecting_client(two_servers, people):
    a, b = two_servers
    users, cookies = people
    alice, _, _ = await ready(a, "/ws/dm/bob/", cookies["alice"])
    bob, _, _ = await ready(b, "/ws/dm/alice/", cookies["bob"])
    seen = []

    async def alice_sends(start, stop):
        for n in range(start, stop):
            await alice.send({"type": "message", "body": f"m{n}", "client_id": f"m{n}"})
            await asyncio.sleep(0.01)

    await alice_sends(0, 10)
    while len(seen) < 10:
        seen.append((await bob.recv_type("message"))["message"])
    b.kill()
    await alice_sends(10, 30)
    assert await bob.closed_with() == 1006
    bob_again, replay, _ = await ready(a, f"/ws/dm/alice/?after={seen[-1]['id']}", cookies["bob"])
    seen += [frame["message"] for frame in replay]
    # Whatever A had not stored yet at the resume arrives live after ready.
    while len(seen) < 30:
        seen.append((await bob_again.recv_type("message"))["message"])
    bodies = [message["body"] for message in seen]
    assert bodies == [f"m{n}" for n in range(30)]
    assert len({message["id"] for message in seen}) == 30
    await alice_sends(30, 31)
    assert (await bob_again.recv_type("message"))["message"]["body"] == "m30"


async def test_redis_outage_loses_nothing_and_clients_converge(start_server, private_redis, people):
    users, cookies = people
    env = {"REDIS_URL": private_redis.url, **GENEROUS_LIMITS}
    a, b = start_server("A", **env), start_server("B", **env)
    post = await sync_to_async(Post.objects.create)(author=users["alice"], title="Outage", body="test")
    alice_bell, _, _ = await ready(b, "/ws/notifications/", cookies["alice"])
    alice_dm, _, _ = await ready(a, "/ws/dm/bob/", cookies["alice"])
    bob_dm, _, _ = await ready(b, "/ws/dm/alice/", cookies["bob"])

    private_redis.stop()
    # Sockets stay open; the sender is told its message is stored but not broadcast.
    await alice_dm.send({"type": "message", "body": "during outage", "client_id": "o1"})
    echo = await alice_dm.recv_type("message")
    assert echo["message"]["body"] == "during outage"
    assert echo["broadcast"] is False
    bob = Browserish(a, cookies["bob"])
    status, _ = await sync_to_async(bob.post_form)(f"/posts/{post.pk}/", {"body": "while redis is down"})
    assert status == 302, "a comment is stored and the page answers even while the push fails"
    assert await sync_to_async(Comment.objects.filter(post=post).count)() == 1

    private_redis.start()
    # Redis restarted empty: every socket is told to resume (4012) rather than stay deaf.
    for survivor in (alice_bell, alice_dm, bob_dm):
        assert await survivor.closed_with(timeout=15) == 4012
    bob_dm, replay, _ = await ready(b, f"/ws/dm/alice/?after={echo['message']['id'] - 1}", cookies["bob"])
    assert [frame["message"]["body"] for frame in replay] == ["during outage"]
    alice_bell, missed, _ = await ready(b, "/ws/notifications/?after=0", cookies["alice"])
    assert [frame["notification"]["kind"] for frame in missed] == ["comment"]
    alice_dm, _, _ = await ready(a, f"/ws/dm/bob/?after={echo['message']['id']}", cookies["alice"])
    # Live pushes flow again across processes.
    await alice_dm.send({"type": "message", "body": "after outage", "client_id": "o2"})
    assert (await bob_dm.recv_type("message"))["message"]["body"] == "after outage"
    await sync_to_async(bob.post_form)(f"/posts/{post.pk}/", {"body": "back to normal"})
    assert (await alice_bell.recv_type("notification"))["notification"]["kind"] == "comment"


async def test_rolled_back_comment_notifies_nobody(daphne_server, people):
    users, cookies = people
    post = await sync_to_async(Post.objects.create)(author=users["alice"], title="Rollback", body="x")
    alice_bell, _, _ = await ready(daphne_server, "/ws/notifications/", cookies["alice"])

    def comment_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            Comment.objects.create(post=post, author=users["bob"], body="never happened")
            raise RuntimeError("payment failed")

    await sync_to_async(comment_then_fail)()
    assert await alice_bell.silent(1.0)
    await sync_to_async(Comment.objects.create)(post=post, author=users["bob"], body="this one counts")
    assert (await alice_bell.recv_type("notification"))["notification"]["kind"] == "comment"


async def test_slow_reader_does_not_hold_up_others_and_is_dropped(start_server, people, make_room):
    users, cookies = people
    server = start_server(
        "slow",
        DAPHNE_PING_INTERVAL="1",
        DAPHNE_PING_TIMEOUT="2",
        WS_RATE_PER_SECOND="1000",
        WS_RATE_BURST="1000",
        WS_USER_RATE_PER_SECOND="1000",
    )
    await sync_to_async(make_room)("busy", *users.values())
    slow = await WsClient.open(server, "/ws/rooms/busy/", cookie=cookies["carol"], max_queue=1)
    fast, _, _ = await ready(server, "/ws/rooms/busy/", cookies["bob"])
    sender, _, _ = await ready(server, "/ws/rooms/busy/", cookies["alice"])
    rss_before = rss_kib(server.process.pid)
    body = "x" * 3000
    for n in range(400):
        await sender.send({"type": "message", "body": f"{n} {body}"})
    got = []
    while len(got) < 400:
        frame = await fast.recv(timeout=10)
        if frame["type"] == "message":
            got.append(int(frame["message"]["body"].split()[0]))
    assert got == list(range(400))
    growth_mib = (rss_kib(server.process.pid) - rss_before) / 1024
    assert growth_mib < 64, f"server grew {growth_mib:.1f} MiB for one stalled reader"
    # Its keepalive ping is stuck behind the backlog, so daphne drops it after
    # ping interval + timeout (about 3 s here), freeing what it held.
    await asyncio.sleep(4)
    assert await slow.closed_with(timeout=10) != 1000


async def test_reader_that_falls_behind_gets_every_frame_intact_and_in_order(start_server, people, make_room):
    """Room frames are written straight to the socket while nothing is buffered
    ahead and queued behind the backlog once the reader's TCP window is full;
    either way the reader gets every frame whole, in order, when it reads again."""
    users, cookies = people
    # Within what the server may hold for one socket (the cap has its own test).
    server = start_server("behind", WS_MAX_BUFFERED_BYTES=str(64 * 1024 * 1024), **GENEROUS_LIMITS)
    await sync_to_async(make_room)("backlog", *users.values())
    behind = await WsClient.open(
        server, "/ws/rooms/backlog/", cookie=cookies["carol"], max_queue=1, receive_buffer=4096
    )
    await behind.until_ready()
    sender, _, _ = await ready(server, "/ws/rooms/backlog/", cookies["alice"])
    # Frame header length forms (7-bit, 16-bit), and more than the kernel's
    # socket buffers hold (~4 MiB on loopback), so the server's own buffer fills.
    sizes = [("x", 60), ("x", 300), ("€", 3990), ("€", 3990)]
    bodies = [f"{n} " + char * (count - len(str(n))) for n in range(560) for char, count in [sizes[n % 4]]]
    for body in bodies:
        await sender.send({"type": "message", "body": body})
        assert (await sender.recv_type("message", timeout=10))["message"]["body"] == body
    received = []
    while len(received) < len(bodies):
        frame = await behind.recv(timeout=10)
        if frame["type"] == "message":
            received.append(frame["message"]["body"])
    assert received == bodies


async def test_a_senders_burst_reaches_members_on_both_processes_whole_and_in_order(two_servers, people, make_room):
    """Messages sent back to back are stored and published in batches; every
    member, on either process, and the sender's echoes see each once, in order."""
    a, b = two_servers
    users, cookies = people
    await sync_to_async(make_room)("burst", *users.values())
    readers = [
        (await ready(server, "/ws/rooms/burst/", cookies[name]))[0] for server, name in [(a, "bob"), (b, "carol")]
    ]
    sender, _, _ = await ready(a, "/ws/rooms/burst/", cookies["alice"])
    bodies = [f"burst {n}" for n in range(300)]
    for body in bodies:
        await sender.send({"type": "message", "body": body, "client_id": body})
    echoes = [(await sender.recv_type("message", timeout=10))["message"] for _ in bodies]
    assert [echo["body"] for echo in echoes] == bodies
    assert [echo["id"] for echo in echoes] == sorted(echo["id"] for echo in echoes)
    for reader in readers:
        assert [(await reader.recv_type("message", timeout=10))["message"] for _ in bodies] == echoes
        assert await reader.silent(0.3)
    assert await sync_to_async(Message.objects.filter(body__startswith="burst ").count)() == len(bodies)


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
