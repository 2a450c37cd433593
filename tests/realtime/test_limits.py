"""Flood limits, socket caps and frame-size limits on every socket."""

import asyncio
import json

import pytest
from django.test import override_settings

from social.realtime import limits
from tests.conftest import needs_redis
from tests.support.clients import WsClient

pytestmark = pytest.mark.django_db(transaction=True)


def realtime(settings, **overrides):
    return {**settings.REALTIME, **overrides}


@pytest.fixture
def bell(sockets, alice_cookie):
    """``await bell()`` -> alice's open /ws/notifications/ socket; ``bell(path)`` another path."""
    return lambda path="/ws/notifications/": sockets.open(path, cookie=alice_cookie)


@pytest.fixture
def alice_cookie(make_user, cookie_for):
    return cookie_for(make_user("alice"))


async def test_flooding_gets_rate_limited_frames_then_4429(settings, bell):
    settings.REALTIME = realtime(settings, RATE_PER_SECOND=1, RATE_BURST=5, RATE_STRIKES_BEFORE_CLOSE=3)
    socket = await bell()
    await socket.until_ready()
    codes = []
    for _ in range(5 + 3):
        await socket.send({"type": "mark_all_read"})
    for _ in range(8):
        output = await socket.output()
        if output["type"] == "websocket.close":
            break
        frame = json.loads(output["text"])
        if frame["type"] == "error":
            codes.append(frame["code"])
    assert codes.count("rate_limited") == 3
    await socket.send({"type": "mark_all_read"})
    assert await socket.output() == {"type": "websocket.close", "code": 4429}


async def test_user_budget_is_shared_by_all_sockets(settings, bell):
    settings.REALTIME = realtime(settings, RATE_PER_SECOND=100, RATE_BURST=100, USER_RATE_PER_SECOND=4)
    first, second = await bell(), await bell()
    await first.until_ready()
    await second.until_ready()
    answers = []
    for socket in (first, second, first, second, first, second):
        await socket.send("not json")
        answers.append((await socket.recv())["code"])
    assert answers.count("bad_json") == 4
    assert answers.count("rate_limited") == 2


async def test_socket_cap_per_user(settings, bell):
    settings.REALTIME = realtime(settings, MAX_SOCKETS_PER_USER=2)
    await bell()
    await bell()
    third = await bell()
    frame = await third.recv()
    assert frame["type"] == "error"
    assert await third.output() == {"type": "websocket.close", "code": 4429}


async def test_closed_sockets_free_their_slot(settings, bell):
    settings.REALTIME = realtime(settings, MAX_SOCKETS_PER_USER=1)
    first = await bell()
    await first.until_ready()
    await first.close()
    second = await bell()
    await second.until_ready()


async def test_oversized_frame_is_answered_not_fatal(bell):
    socket = await bell()
    await socket.until_ready()
    await socket.send({"type": "mark_all_read", "pad": "x" * 40_000})
    frame = await socket.recv()
    assert frame["code"] == "too_long"
    await socket.send("still here?")
    assert (await socket.recv())["code"] == "bad_json"


async def test_daphne_cuts_off_frames_over_its_limit(daphne_server, alice_cookie):
    client = await WsClient.open(daphne_server, "/ws/notifications/", cookie=alice_cookie)
    await client.until_ready()
    await client.send("x" * (128 * 1024))
    # autobahn fails the connection (1009 when it manages to say so, else a plain drop)
    assert await client.closed_with() in (1006, 1009)


@override_settings(ALLOWED_HOSTS=["*"])
def test_wildcard_allowed_hosts_fails_the_system_check():
    from django.core.checks import run_checks

    errors = [message.id for message in run_checks(tags=["security"])]
    assert "social.E001" in errors


async def test_malformed_after_is_reported_and_ignored(bell):
    socket = await bell("/ws/notifications/?after=abc")
    first = await socket.recv()
    assert first["type"] == "error" and first["code"] == "invalid"
    assert (await socket.recv())["type"] == "ready"


@needs_redis
async def test_frames_counted_together_get_the_answers_each_would_have_had_alone(settings, monkeypatch):
    """One Redis round trip counts a loop turn's frames: the first USER_RATE_PER_SECOND of the
    window pass, over turns and users alike."""
    settings.REALTIME = realtime(settings, USER_RATE_PER_SECOND=5)
    monkeypatch.setattr(limits.time, "time", lambda: 1_900_000_000.5)
    first_turn = await asyncio.gather(*(limits.user_frame_allowed(1) for _ in range(4)))
    second_turn = await asyncio.gather(*(limits.user_frame_allowed(1) for _ in range(3)))
    other_user = await asyncio.gather(*(limits.user_frame_allowed(2) for _ in range(3)))
    assert (first_turn, second_turn, other_user) == ([True] * 4, [True, False, False], [True] * 3)


@needs_redis
async def test_frame_counting_fails_open_when_redis_fails(settings, monkeypatch):
    settings.REALTIME = realtime(settings, USER_RATE_PER_SECOND=1)

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(limits._redis().__class__, "pipeline", broken)
    assert await asyncio.gather(*(limits.user_frame_allowed(3) for _ in range(3))) == [True] * 3
