"""The WebSocket stack: origin check first, then the session becomes scope["user"]."""

import pytest
from django.test import override_settings

from social.asgi import application
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


async def test_stack_order_sees_anonymous_user():
    """The inner app receives scope["user"] from AuthMiddlewareStack (anonymous without a cookie)."""
    from channels.auth import AuthMiddlewareStack
    from channels.security.websocket import AllowedHostsOriginValidator

    seen = {}

    async def app(scope, receive, send):
        seen["user"] = scope["user"]
        await send({"type": "websocket.close", "code": 1000})

    stack = AllowedHostsOriginValidator(AuthMiddlewareStack(app))
    await communicator("/ws/x/", origin="http://127.0.0.1", app=stack).connect()
    assert seen["user"].is_anonymous
    assert type(application).__name__ == "TrustedProxyMiddleware"
    assert type(application.app.application_mapping["websocket"]).__name__ == "OriginValidator"


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
async def test_real_server_refuses_foreign_origin_with_403(daphne_server):
    with pytest.raises(Exception) as refused:
        await WsClient.open(daphne_server, "/ws/notifications/", origin="http://evil.example")
    assert "403" in str(refused.value)
