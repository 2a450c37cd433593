"""Ending a session closes that user's open sockets, on every process, within seconds."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from social.realtime.groups import control_group
from tests.conftest import needs_redis
from tests.support.clients import WsClient
from tests.support.http import Browserish
from tests.support.waiting import until_subscribed

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def alice(make_user):
    return make_user("alice", password=PASSWORD)


def logged_in_browser(server):
    browser = Browserish(server)
    assert browser.login("alice", PASSWORD) == 302
    return browser


async def open_ready(server, browser):
    client = await WsClient.open(server, "/ws/notifications/", cookie=browser.cookie_header())
    await client.until_ready()
    return client


async def test_logout_closes_that_sessions_sockets_only(daphne_server, alice):
    laptop = await sync_to_async(logged_in_browser)(daphne_server)
    phone = await sync_to_async(logged_in_browser)(daphne_server)
    laptop_socket = await open_ready(daphne_server, laptop)
    phone_socket = await open_ready(daphne_server, phone)
    status, _ = await sync_to_async(laptop.post_form)("/accounts/logout/", {})
    assert status == 302
    assert await laptop_socket.closed_with(timeout=3) == 4401
    assert await phone_socket.silent(0.5)


async def test_password_change_logs_out_other_sessions_but_not_this_one(daphne_server, alice):
    laptop = await sync_to_async(logged_in_browser)(daphne_server)
    phone = await sync_to_async(logged_in_browser)(daphne_server)
    laptop_socket = await open_ready(daphne_server, laptop)
    phone_socket = await open_ready(daphne_server, phone)
    status, _ = await sync_to_async(laptop.post_form)(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "a-new-pass-991", "password2": "a-new-pass-991"},
    )
    assert status == 302
    # Every socket is told to re-authenticate (the laptop's session key was cycled) ...
    assert await phone_socket.closed_with(timeout=3) == 4001
    assert await laptop_socket.closed_with(timeout=3) == 4001
    # ... the phone's cookie no longer logs in, the laptop's renewed one does.
    assert (
        await (await WsClient.open(daphne_server, "/ws/notifications/", cookie=phone.cookie_header())).closed_with()
        == 4401
    )
    await open_ready(daphne_server, laptop)


async def test_admin_ending_sessions_closes_sockets(daphne_server, alice, make_user):
    await sync_to_async(make_user)("root", password=PASSWORD, is_staff=True, is_superuser=True)
    socket = await open_ready(daphne_server, await sync_to_async(logged_in_browser)(daphne_server))
    admin = Browserish(daphne_server)
    assert await sync_to_async(admin.login)("root", PASSWORD) == 302
    status, _ = await sync_to_async(admin.post_form)(
        "/admin/auth/user/", {"action": "end_sessions", "_selected_action": [alice.pk], "index": 0}
    )
    assert status == 302
    assert await socket.closed_with(timeout=3) == 4001


async def test_deactivating_a_user_closes_their_sockets(alice, cookie_for, sockets):
    cookie = await sync_to_async(cookie_for)(alice)
    socket = await sockets.open("/ws/notifications/", cookie=cookie)
    await socket.until_ready()
    alice.is_active = False
    await sync_to_async(alice.save)()
    assert await socket.output(3) == {"type": "websocket.close", "code": 4001}


async def test_a_socket_with_an_ended_session_is_refused_at_connect(daphne_server, alice):
    browser = await sync_to_async(logged_in_browser)(daphne_server)
    cookie = browser.cookie_header()
    await sync_to_async(browser.post_form)("/accounts/logout/", {})
    client = await WsClient.open(daphne_server, "/ws/notifications/", cookie=cookie)
    assert await client.closed_with() == 4401


@needs_redis
async def test_logout_on_one_process_closes_sockets_on_another(start_server, alice):
    first, second = start_server("a"), start_server("b")
    browser = await sync_to_async(logged_in_browser)(first)
    socket_on_second = await open_ready(second, browser)
    await until_subscribed(get_channel_layer(), control_group(alice.pk))
    await sync_to_async(browser.post_form)("/accounts/logout/", {})
    assert await socket_on_second.closed_with(timeout=3) == 4401
