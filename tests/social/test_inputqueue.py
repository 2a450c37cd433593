"""The lighter input queue daphne's connections get (social/inputqueue.py): in order, nothing lost to a
cancelled wait, and only while daphne is the version it was written against."""

import asyncio
import inspect
import re

import pytest
from daphne import http_protocol, ws_protocol
from daphne.server import Server

from social import inputqueue
from social.inputqueue import InputQueue
from social.serve import announcing_server_class


async def test_messages_come_out_in_order_and_a_get_waits_for_the_next():
    queue = InputQueue()
    queue.put_nowait({"n": 1})
    queue.put_nowait({"n": 2})
    assert queue.qsize() == 2
    assert [await queue.get(), await queue.get()] == [{"n": 1}, {"n": 2}]
    assert queue.empty()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait({"n": 3})
    assert await asyncio.wait_for(waiting, 2) == {"n": 3}


async def test_a_cancelled_get_loses_no_message():
    queue = InputQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    # The message wakes the first getter, which is cancelled before it runs: the second gets it.
    queue.put_nowait({"n": 1})
    first.cancel()
    assert await asyncio.wait_for(second, 2) == {"n": 1}
    with pytest.raises(asyncio.CancelledError):
        await first
    idle = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    idle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await idle
    queue.put_nowait({"n": 2})
    assert await queue.get() == {"n": 2}


async def served_queue():
    """The queue the service's daphne Server gives a new connection (a bare instance, no sockets)."""
    server = object.__new__(announcing_server_class())
    protocol = object()
    server.connections = {protocol: {}}
    ran = []

    async def application(scope, receive, send):
        ran.append(scope)

    server.application = application
    queue = server.create_application(protocol, {"type": "websocket"})
    await server.connections[protocol]["application_instance"]
    assert ran
    return queue


async def test_the_server_uses_it_only_on_the_daphne_it_was_copied_from(monkeypatch):
    assert inputqueue.applies()
    assert isinstance(await served_queue(), InputQueue)
    monkeypatch.setattr(inputqueue, "applies", lambda: False)
    assert isinstance(await served_queue(), asyncio.Queue)


def test_daphne_is_still_what_this_was_copied_from():
    """Copied from daphne 4.2.3: on a new daphne compare Server.create_application and what its
    protocols call on the queue with social/inputqueue.py, then update DAPHNE_VERSION."""
    assert inputqueue.DAPHNE_VERSION == "4.2.3"
    stock = inspect.getsource(Server.create_application)
    for line in (
        "input_queue = asyncio.Queue()",
        'scope.setdefault("asgi", {"version": "3.0"})',
        "receive=input_queue.get,",
        "send=partial(self.handle_reply, protocol),",
        'self.connections[protocol]["application_instance"] = asyncio.ensure_future(',
        "return input_queue",
    ):
        assert line in stock
    called = set()
    for module in (ws_protocol, http_protocol):
        called |= set(re.findall(r"application_queue\.(\w+)", inspect.getsource(module)))
    assert called == {"put_nowait"}
