"""The WebSocket stack: origin check first, then the session becomes scope["user"]."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.test import override_settings

from social.asgi import application
from social.realtime.auth import auth_middleware_stack
from tests.support.clients import WsClient
from tests.support.sockets import communicator, refused

pytestmark = pytest.mark.django_db(transaction=True)


async def test_foreign_origin_is_refused_before_any_consumer():
    assert await refused("/ws/notifications/", origin="http://evil.example")


async def test_missing_origin_is_refused():
    assert await refused("/ws/notifications/", origin=None)


async def test_anonymous_socket_is_closed_with_4401(sockets):
    socket = await sockets.open("/ws/notifications/")
    assert await socket.output() == {"type": "websocket.close", "code": 4401}


def user_seeing_stack(seen):
    """The service's stack around an app that records scope["user"] and closes."""

    async def app(scope, receive, send):
        seen["user"] = scope["user"]
        await send({"type": "websocket.close", "code": 1000})

    return AllowedHostsOriginValidator(auth_middleware_stack(app))


async def test_stack_order_sees_anonymous_user():
    """The inner app receives scope["user"] from the auth stack (anonymous without a cookie)."""
    seen = {}
    await communicator("/ws/x/", origin="http://127.0.0.1", app=user_seeing_stack(seen)).connect()
    assert seen["user"].is_anonymous
    assert type(application).__name__ == "TrustedProxyMiddleware"
    assert type(application.app.application_mapping["websocket"]).__name__ == "OriginValidator"


async def test_session_cookie_becomes_the_user(users, cookies):
    seen = {}
    await communicator("/ws/x/", cookie=cookies["alice"], app=user_seeing_stack(seen)).connect()
    assert seen["user"].pk == users["alice"].pk


async def test_connect_is_not_queued_behind_work_on_the_shared_sync_thread(users, cookies):
    """After a restart every tab reconnects at once: the session lookup runs on the database
    thread pool, so it finishes while the one thread-sensitive thread is still busy."""
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(10))
    seen = {}
    try:
        await asyncio.wait_for(
            communicator("/ws/x/", cookie=cookies["bob"], app=user_seeing_stack(seen)).connect(), 5
        )
        assert not busy.done()
    finally:
        release.set()
        await busy
    assert seen["user"].pk == users["bob"].pk


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
async def test_real_server_refuses_foreign_origin_with_403(daphne_server):
    with pytest.raises(Exception) as refused:
        await WsClient.open(daphne_server, "/ws/notifications/", origin="http://evil.example")
    assert "403" in str(refused.value)
