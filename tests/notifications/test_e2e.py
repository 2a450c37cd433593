"""The bell against the real daphne process, with real WebSocket and HTTP clients.

Events are caused through the server (HTTP form posts, WebSocket frames) or by
another process sharing Redis, never by ORM writes here: with the in-memory
layer this process and the server do not share a channel layer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from notifications.models import Notification
from social.models import Comment, Post
from tests.conftest import needs_redis
from tests.support.clients import WsClient
from tests.support.http import Browserish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
BELL = "/ws/notifications/"


@pytest.fixture
def post(alice):
    return Post.objects.create(author=alice, title="Hello", body="first")


@pytest.fixture
def cookies(alice, bob, carol, cookie_for):
    return {user.username: cookie_for(user) for user in (alice, bob, carol)}


async def comment_over_http(server, cookie: str, post_id: int, body: str, parent: int | None = None) -> int:
    """GET the post page for the CSRF cookie, then POST the comment form, as a browser does."""
    browser = Browserish(server, cookie)
    data = {"body": body} if parent is None else {"body": body, "parent": parent}
    status, _ = await asyncio.to_thread(browser.post_form, f"/posts/{post_id}/", data)
    assert status == 302
    return await sync_to_async(lambda: Comment.objects.latest("id").pk)()


async def open_ready(server, cookie: str, query: str = "") -> tuple[WsClient, list, dict]:
    client = await WsClient.open(server, BELL + query, cookie=cookie)
    replay, ready = await client.until_ready()
    return client, replay, ready


async def test_comment_reaches_both_of_the_authors_tabs(daphne_server, post, cookies):
    tab1, _, _ = await open_ready(daphne_server, cookies["alice"])
    tab2, _, _ = await open_ready(daphne_server, cookies["alice"])
    comment_id = await comment_over_http(daphne_server, cookies["bob"], post.pk, "Nice post!")
    for tab in (tab1, tab2):
        frame = await tab.recv_type("notification")
        assert frame["unread"] == 1
        assert frame["notification"]["kind"] == "comment"
        assert frame["notification"]["text"] == "bob commented on your post “Hello”"
        assert frame["notification"]["url"] == f"/posts/{post.pk}/#comment-{comment_id}"
        assert frame["notification"]["actor"]["username"] == "bob"
        await tab.close()


async def test_mention_and_reply(daphne_server, post, cookies):
    alice, _, _ = await open_ready(daphne_server, cookies["alice"])
    carol, _, _ = await open_ready(daphne_server, cookies["carol"])
    bob, _, _ = await open_ready(daphne_server, cookies["bob"])
    first = await comment_over_http(daphne_server, cookies["bob"], post.pk, "what do you say, @carol?")
    assert (await carol.recv_type("notification"))["notification"]["kind"] == "mention"
    assert (await alice.recv_type("notification"))["notification"]["kind"] == "comment"
    await comment_over_http(daphne_server, cookies["carol"], post.pk, "agreed @bob", parent=first)
    frame = await bob.recv_type("notification")
    assert frame["notification"]["kind"] == "reply"
    assert frame["notification"]["text"] == "carol replied to your comment on “Hello”"
    assert await bob.silent(0.3)  # one notification for bob, though he was also mentioned
    for client in (alice, bob, carol):
        await client.close()


async def test_no_notification_for_your_own_comment(daphne_server, post, cookies):
    alice, _, _ = await open_ready(daphne_server, cookies["alice"])
    await comment_over_http(daphne_server, cookies["alice"], post.pk, "replying to myself, @alice")
    assert await alice.silent(0.5)
    await alice.close()
    assert not await sync_to_async(Notification.objects.exists)()


async def test_resume_after_a_missed_push(daphne_server, post, cookies):
    alice, _, ready = await open_ready(daphne_server, cookies["alice"], "?after=0")
    assert ready["unread"] == 0
    await alice.close()
    await comment_over_http(daphne_server, cookies["bob"], post.pk, "while you were away")
    alice, replay, ready = await open_ready(daphne_server, cookies["alice"], "?after=0")
    assert [frame["notification"]["text"] for frame in replay] == ["bob commented on your post “Hello”"]
    seen = replay[0]["notification"]["id"]
    await alice.close()
    # Missed while away: carol's comment groups with bob's unread one.
    await comment_over_http(daphne_server, cookies["carol"], post.pk, "me too")
    alice, replay, ready = await open_ready(daphne_server, cookies["alice"], f"?after={seen}")
    assert [frame["notification"]["text"] for frame in replay] == ["carol and bob commented on your post “Hello”"]
    assert replay[0]["notification"]["replaces"] == [seen]
    assert ready["unread"] == 1
    await alice.close()
    # The superseded row is gone from a full resume too.
    alice, replay, _ = await open_ready(daphne_server, cookies["alice"], "?after=0")
    assert [frame["notification"]["count"] for frame in replay] == [2]
    await alice.close()


async def test_mark_read_in_one_tab_updates_the_other(daphne_server, post, cookies):
    tab1, _, _ = await open_ready(daphne_server, cookies["alice"])
    tab2, _, _ = await open_ready(daphne_server, cookies["alice"])
    await comment_over_http(daphne_server, cookies["bob"], post.pk, "one")
    first = (await tab1.recv_type("notification"))["notification"]["id"]
    await tab1.send({"type": "mark_read", "ids": [first]})
    assert await tab2.recv_type("unread") == {"type": "unread", "unread": 0, "ids": [first]}
    assert (await tab1.recv_type("unread"))["unread"] == 0  # the acting tab hears it through the group too
    # The first one is read, so the next comment starts a new notification.
    await comment_over_http(daphne_server, cookies["carol"], post.pk, "two")
    second = await tab2.recv_type("notification")
    assert (second["notification"]["replaces"], second["unread"]) == ([], 1)
    await tab2.send({"type": "mark_all_read"})
    assert (await tab1.recv_type("unread"))["unread"] == 0
    assert (await tab2.recv_type("unread"))["unread"] == 0
    await tab1.close()
    await tab2.close()


async def test_marking_on_the_page_updates_open_tabs(daphne_server, post, cookies):
    tab, _, _ = await open_ready(daphne_server, cookies["alice"])
    await comment_over_http(daphne_server, cookies["bob"], post.pk, "one")
    await tab.recv_type("notification")
    browser = Browserish(daphne_server, cookies["alice"])
    status, _ = await asyncio.to_thread(browser.post_form, "/notifications/", {"all": "1"})
    assert status == 405  # the page itself is GET only; the form posts to /notifications/read/
    status, _ = await asyncio.to_thread(browser.post_form, "/notifications/read/", {"all": "1"})
    assert status == 302
    assert (await tab.recv_type("unread"))["unread"] == 0
    await tab.close()


async def test_bad_frames_over_a_real_socket(daphne_server, alice, cookies):
    tab, _, _ = await open_ready(daphne_server, cookies["alice"])
    for frame, code in [("nope", "bad_json"), (b"\x01", "bad_frame"), ({"type": "x"}, "unknown_type")]:
        await tab.send(frame)
        assert (await tab.recv_type("error"))["code"] == code
    await tab.send({"type": "mark_all_read"})
    assert await tab.recv_type("unread") == {"type": "unread", "unread": 0}
    await tab.close()


async def test_anonymous_real_socket_is_closed_with_4401(daphne_server):
    client = await WsClient.open(daphne_server, BELL)
    assert await client.closed_with() == 4401


def run_command(server_database: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DEBUG": "1",
        "DATABASE_URL": server_database,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@needs_redis
async def test_notify_from_another_process_reaches_the_open_tab(daphne_server, server_database, alice, cookies):
    tab, _, _ = await open_ready(daphne_server, cookies["alice"])
    result = await asyncio.to_thread(run_command, server_database, "notify", "alice", "Backup done", "--url", "/")
    assert result.returncode == 0, result.stderr
    frame = await tab.recv_type("notification")
    assert (frame["notification"]["kind"], frame["notification"]["text"], frame["unread"]) == (
        "system",
        "Backup done",
        1,
    )
    await tab.close()


@needs_redis
async def test_demo_job_progress_reaches_the_open_tab(daphne_server, server_database, alice, cookies):
    tab, _, _ = await open_ready(daphne_server, cookies["alice"])
    job = asyncio.create_task(
        asyncio.to_thread(run_command, server_database, "demo_job", "alice", "--steps", "2", "--delay", "0.1")
    )
    texts = [(await tab.recv_type("notification", timeout=20))["notification"]["text"] for _ in range(4)]
    assert texts == [
        "Demo job started: 2 steps",
        "Demo job: step 1 of 2 done",
        "Demo job: step 2 of 2 done",
        "Demo job finished",
    ]
    assert (await job).returncode == 0
    await tab.close()
