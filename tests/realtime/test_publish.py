"""Publishing from sync code that runs outside any server event loop (jobs, commands, other processes)."""

import asyncio
import os
import threading

import pytest
from channels.layers import get_channel_layer

from social.realtime import publish
from social.realtime.publish import group_send_many_sync, group_send_sync
from tests.conftest import needs_redis
from tests.support.waiting import until_subscribed

pytestmark = needs_redis


@pytest.fixture
async def listener():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("job_updates", channel)
    await until_subscribed(layer, "job_updates")
    yield layer, channel
    await layer.group_discard("job_updates", channel)


def in_plain_thread(work):
    """Run ``work`` in a thread that is not under sync_to_async, like a job's."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", work()))
    thread.start()
    thread.join(10)
    return result["value"]


async def test_a_jobs_sends_arrive_in_order(listener):
    layer, channel = listener

    def job():
        sent = [group_send_sync("job_updates", {"type": "progress", "n": n}) for n in range(30)]
        sent += group_send_many_sync([("job_updates", {"type": "progress", "n": n}) for n in range(30, 60)])
        return sent

    sent = await asyncio.get_running_loop().run_in_executor(None, in_plain_thread, job)
    assert sent == [True] * 60
    received = [(await asyncio.wait_for(layer.receive(channel), 2))["n"] for _ in range(60)]
    assert received == list(range(60))


async def test_a_forked_child_publishes_through_its_own_loop(listener):
    """A prefork worker inherits the parent's publishing loop object but not its thread."""
    layer, channel = listener
    in_plain_thread(lambda: group_send_sync("job_updates", {"type": "progress", "n": -1}))
    pid = os.fork()
    if pid == 0:
        ok = group_send_sync("job_updates", {"type": "progress", "n": os.getpid()})
        os._exit(0 if ok else 1)
    _, status = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [(await asyncio.wait_for(layer.receive(channel), 2))["n"] for _ in range(2)] == [-1, pid]


def test_a_send_stuck_in_redis_is_left_to_finish_without_its_caller(monkeypatch):
    """A request that has committed does not wait out the layer's timeouts (holding its database connection)."""
    layer = get_channel_layer()

    async def stuck(group, event):
        await asyncio.sleep(1)

    monkeypatch.setattr(layer, "group_send", stuck)
    monkeypatch.setattr(publish, "SYNC_PUBLISH_WAIT_SECONDS", 0.1)
    assert in_plain_thread(lambda: group_send_sync("job_updates", {"type": "progress", "n": 1})) is False
