"""examples/client.py against a real daphne: log in, bell and DM, send, resume after a restart, stop codes."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dm import access, changes, services
from dm.models import Message
from social.realtime import protocol

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-for-tests-1"
RETRIED = {1000, 1001, 1006, 1011, 1012, 4012}


class RunningClient:
    """The example client as a subprocess, its JSON-line events read on a thread."""

    def __init__(self, server: Any, *args: str) -> None:
        command = [sys.executable, str(ROOT / "examples" / "client.py"), "--url", server.url, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        for line in self.process.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "output", "line": line})

    def until(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
        """The next event ``wanted`` accepts (every event on the way is kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such event within {timeout}s; saw {self.seen}") from None
            self.seen.append(event)
            if wanted(event):
                return event

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


def frame_of(socket: str | None, kind: str) -> Callable[[dict[str, Any]], bool]:
    """A ``kind`` frame on that socket (on any socket for None)."""
    return lambda e: e["event"] == "frame" and socket in (None, e["socket"]) and e["frame"]["type"] == kind


@pytest.fixture
def users(make_user):
    return make_user("alice", PASSWORD), make_user("bob", PASSWORD)


@pytest.fixture
def run_client() -> Iterator[Callable[..., RunningClient]]:
    started: list[RunningClient] = []

    def run(server: Any, *args: str) -> RunningClient:
        started.append(RunningClient(server, *args))
        return started[-1]

    yield run
    for client in started:
        client.stop()


def test_client_sends_then_resumes_after_a_restart_with_what_it_missed(start_server, run_client, users):
    alice, bob = users
    server = start_server("client")
    client = run_client(
        server, "--user", "alice", "--password", PASSWORD, "--dm", "bob", "--send", "hello bob", "--backoff", "0.3"
    )
    assert client.until(lambda e: e["event"] == "logged_in")["user"] == "alice"
    # The two sockets are independent: their ready frames come in either order.
    ready = {client.until(frame_of(None, "ready"))["socket"] for _ in range(2)}
    assert ready == {"bell", "dm"}
    echo = client.until(frame_of("dm", "message"))["frame"]["message"]
    assert (echo["body"], echo["sender"]["username"]) == ("hello bob", "alice")

    server.stop()
    closed = client.until(lambda e: e["event"] == "closed" and e["socket"] == "dm")
    assert closed["code"] in RETRIED and closed["retry_in"] > 0
    # Stored while the client is away, so only its resume can bring it.
    conversation, _ = access.access_direct(bob, "alice")
    missed = services.message_store(sender=bob, conversation=conversation, body="while you were out", client_id=None)
    changes.message_change(user=bob, conversation=conversation, change=protocol.Change("react", echo["id"], emoji="👍"))
    server.start()

    reconnected = client.until(lambda e: e["event"] == "connected" and e["socket"] == "dm")
    # It resumes by version, so it gets the reaction too, not only the new message.
    assert reconnected["url"].endswith(f"/ws/dm/bob/?since={echo['version']}")
    replayed = client.until(frame_of("dm", "message"))["frame"]["message"]
    assert (replayed["id"], replayed["body"]) == (missed.message.pk, "while you were out")
    reacted = client.until(frame_of("dm", "message_update"))["frame"]["message"]
    assert (reacted["id"], [r["emoji"] for r in reacted["reactions"]]) == (echo["id"], ["👍"])
    client.until(frame_of("dm", "ready"))
    time.sleep(0.5)  # a doubled copy or a resent "hello bob" would arrive straight after ready
    while not client.events.empty():
        client.seen.append(client.events.get())
    dm_messages = [e["frame"]["message"]["id"] for e in client.seen if frame_of("dm", "message")(e)]
    assert dm_messages == [echo["id"], missed.message.pk]
    assert Message.objects.filter(sender=alice).count() == 1


@pytest.mark.parametrize(("peer", "code"), [("nobody", 4404), ("alice", 4403)])
def test_client_stops_on_a_refusal_instead_of_reconnecting(start_server, run_client, users, peer, code):
    server = start_server("client")
    client = run_client(server, "--user", "alice", "--password", PASSWORD, "--dm", peer, "--backoff", "0.1")
    stopped = client.until(lambda e: e["event"] == "stopped")
    assert (stopped["socket"], stopped["code"]) == ("dm", code)
    assert client.process.wait(10) == 1
    assert sum(1 for e in client.seen if e["event"] == "connected" and e["socket"] == "dm") == 1


def test_client_says_when_the_login_is_wrong(start_server, run_client, users):
    server = start_server("client")
    client = run_client(server, "--user", "alice", "--password", "not-the-password")
    assert "wrong username or password" in client.until(lambda e: e["event"] == "login_failed")["error"]
    assert client.process.wait(10) == 2

