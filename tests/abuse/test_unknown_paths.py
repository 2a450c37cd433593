"""Names no user or room can have, and WebSocket paths nothing serves: refused, never a 500.

A NUL byte reached PostgreSQL (which refuses it in text) and answered 500; an
unknown WebSocket path made URLRouter raise (500 and a traceback in the log).
Run on both databases by CI.
"""

import logging

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN_PATHS = ["/ws/nope/", "/ws/dm/", "/ws/dm/x/y/", "/ws/rooms/", "/ws/notifications/extra/", "/ws/dm/\x00/",
                 "/ws/rooms/\x00/"]


@pytest.mark.parametrize("path", ["/api/messages/%00/", "/api/rooms/%00/messages/", "/messages/%00/", "/rooms/%00/"])
def test_nul_in_a_name_is_404(client, users, path, caplog):
    client.force_login(users["alice"])
    with caplog.at_level(logging.ERROR):
        assert client.get(path).status_code == 404
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("logged_in", [False, True])
async def test_unknown_socket_path_closes_4404_without_an_error_log(path, logged_in, connect, caplog):
    with caplog.at_level(logging.ERROR):
        socket = await connect("alice" if logged_in else None, path)
        assert await socket.output() == {"type": "websocket.close", "code": 4404}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_client_id_with_nul_is_invalid_and_nothing_is_stored(connect, users):
    from dm.models import Message

    socket = await connect("alice", "/ws/dm/bob/")
    await socket.until_ready()
    await socket.send({"type": "message", "body": "hi", "client_id": "a\x00b"})
    error = await socket.recv()
    assert (error["type"], error["code"]) == ("error", "invalid")
    await socket.send({"type": "message", "body": "still here", "client_id": "ok-1"})
    assert (await socket.recv_type("message"))["message"]["body"] == "still here"
    assert await Message.objects.filter(body="hi").acount() == 0
