"""An account deactivated by a bulk update (no signal fires) stops posting at its next frame."""

import pytest
from django.contrib.auth import get_user_model

from dm import services
from dm.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def general(users):
    return services.room_create(creator=users["bob"], name="General", slug="general", private=False)


@pytest.mark.parametrize("path", ["/ws/dm/bob/", "/ws/rooms/general/"])
async def test_next_message_after_a_bulk_deactivation_is_refused_and_not_stored(connect, users, general, path):
    socket = await connect("alice", path)
    await socket.until_ready()
    await socket.send({"type": "message", "body": "before", "client_id": "c1"})
    assert (await socket.recv_type("message"))["message"]["body"] == "before"

    await get_user_model().objects.filter(pk=users["alice"].pk).aupdate(is_active=False)
    await socket.send({"type": "message", "body": "after", "client_id": "c2"})
    error = await socket.recv_type("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "c2")
    assert await socket.closed_with() == 4401
    assert await Message.objects.filter(body="after").acount() == 0
    assert await Message.objects.filter(body="before").acount() == 1


async def test_typing_after_a_bulk_deactivation_closes_the_socket(connect, users):
    socket = await connect("alice", "/ws/dm/bob/")
    await socket.until_ready()
    await get_user_model().objects.filter(pk=users["alice"].pk).aupdate(is_active=False)
    await socket.send({"type": "typing"})
    assert (await socket.recv_type("error"))["code"] == "forbidden"
    assert await socket.closed_with() == 4401
