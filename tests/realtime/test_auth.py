"""Who a socket belongs to: the session cookie becomes ``scope["user"]`` and ``scope["session_key"]``
(social/realtime/auth.py), anonymous for anything but a good session."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session

from social.realtime.auth import SessionUserMiddleware
from tests.support.sockets import communicator

pytestmark = pytest.mark.django_db(transaction=True)


def seeing(seen):
    """The middleware around an app that records what it was given and closes."""

    async def app(scope, receive, send):
        seen.update(user=scope["user"], session_key=scope["session_key"])
        await send({"type": "websocket.close", "code": 1000})

    return SessionUserMiddleware(app)


async def scope_for(cookie):
    seen = {}
    await communicator("/ws/x/", cookie=cookie, app=seeing(seen)).connect()
    return seen


async def test_a_good_session_cookie_gives_the_user_and_the_session_key(users, cookies):
    seen = await scope_for(f"theme=dark; {cookies['alice']}")
    assert seen["user"].pk == users["alice"].pk
    assert seen["user"].is_authenticated
    assert f"{settings.SESSION_COOKIE_NAME}={seen['session_key']}" == cookies["alice"]


@pytest.mark.parametrize(
    "cookie",
    [None, "theme=dark", f"{settings.SESSION_COOKIE_NAME}=", f"{settings.SESSION_COOKIE_NAME}=no-such-session"],
)
async def test_a_missing_or_unknown_session_is_anonymous(db, cookie):
    seen = await scope_for(cookie)
    assert seen["user"].is_anonymous
    assert seen["session_key"] is None


async def test_a_session_of_an_outdated_password_is_anonymous_and_ended(users, cookies):
    alice = users["alice"]
    alice.set_password("a-new-password-2")
    await sync_to_async(alice.save)()
    seen = await scope_for(cookies["alice"])
    assert seen["user"].is_anonymous
    assert seen["session_key"] is None
    key = cookies["alice"].split("=", 1)[1]
    assert not await sync_to_async(Session.objects.filter(session_key=key).exists)()


async def test_a_deactivated_user_is_anonymous(users, cookies):
    alice = users["alice"]
    alice.is_active = False
    await sync_to_async(alice.save)()
    assert (await scope_for(cookies["alice"]))["user"].is_anonymous
