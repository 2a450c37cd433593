"""P0: a plain ``websockets`` broadcast server, no Django and no channel layer.

It speaks the same frames as the app for the paths the bench uses, so one load generator drives
every server. Identity comes from the query string (``?as=<username>&uid=<id>``); there is no
auth and nothing is stored. It is the ceiling for Python WebSocket fan-out on this machine.

- ``/ws/rooms/<slug>/``: room; a message frame is serialised once and broadcast to the room.
- ``/ws/dm/<peer>/``: pair group of the two usernames.
- ``/ws/notifications/``: personal group of ``uid``.
- ``/push/``: another process sends ``{"type": "push", "user": uid, "text": ...}`` frames here;
  each becomes a notification frame on that user's sockets (the P0 analogue of ``notify()``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import signal
from collections import defaultdict
from contextlib import suppress
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from bench.rlimit_exec import raise_nofile

_ids = itertools.count(1)
groups: dict[str, set[ServerConnection]] = defaultdict(set)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _message_frame(conversation: int, user: dict[str, object], body: str, client_id: object) -> str:
    return _dumps(
        {
            "type": "message",
            "message": {
                "id": next(_ids),
                "conversation": conversation,
                "sender": user,
                "body": body,
                "created_at": _now(),
                "client_id": client_id,
            },
        }
    )


async def _chat(ws: ServerConnection, group: str, user: dict[str, object], ready: dict[str, object]) -> None:
    members = groups[group]
    members.add(ws)
    try:
        await ws.send(_dumps(ready))
        async for raw in ws:
            try:
                frame = json.loads(raw)
            except ValueError:
                await ws.send(_dumps({"type": "error", "code": "bad_json", "message": "bad JSON"}))
                continue
            if frame.get("type") == "message":
                broadcast(members, _message_frame(1, user, str(frame.get("body", "")), frame.get("client_id")))
    finally:
        members.discard(ws)


async def _notifications(ws: ServerConnection, uid: int) -> None:
    group = f"user_{uid}"
    groups[group].add(ws)
    try:
        await ws.send(_dumps({"type": "ready", "unread": 0, "inbox_unread": 0}))
        await ws.wait_closed()
    finally:
        groups[group].discard(ws)


async def _push(ws: ServerConnection) -> None:
    unread: dict[int, int] = defaultdict(int)
    async for raw in ws:
        frame = json.loads(raw)
        uid = int(frame["user"])
        unread[uid] += 1
        note = {
            "id": next(_ids),
            "kind": "system",
            "actor": None,
            "text": frame.get("text", ""),
            "url": None,
            "created_at": _now(),
            "read": False,
        }
        broadcast(
            groups.get(f"user_{uid}", ()), _dumps({"type": "notification", "notification": note, "unread": unread[uid]})
        )


async def handler(ws: ServerConnection) -> None:
    """Route one connection by path; a client vanishing mid-frame is normal at teardown."""
    with suppress(ConnectionClosed):
        await _route(ws)


async def _route(ws: ServerConnection) -> None:
    assert ws.request is not None
    url = urlsplit(ws.request.path)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    username = query.get("as", "anon")
    uid = int(query.get("uid", "0"))
    user: dict[str, object] = {"id": uid, "username": username}
    parts = [p for p in url.path.split("/") if p]
    if parts[:2] == ["ws", "rooms"] and len(parts) == 3:
        ready = {
            "type": "ready",
            "conversation": 1,
            "room": {"slug": parts[2], "name": parts[2], "private": False},
            "online": [],
        }
        await _chat(ws, f"room_{parts[2]}", user, ready)
    elif parts[:2] == ["ws", "dm"] and len(parts) == 3:
        lo, hi = sorted((username, parts[2]))
        ready = {"type": "ready", "conversation": 1, "peer": {"id": 0, "username": parts[2]}, "read": {}}
        await _chat(ws, f"dm_{lo}_{hi}", user, ready)
    elif parts == ["ws", "notifications"]:
        await _notifications(ws, uid)
    elif parts == ["push"]:
        await _push(ws)
    else:
        await ws.close(4404, "no such path")


async def amain(port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_queue=None,
        ping_interval=20,
        ping_timeout=20,
        backlog=1024,
    ):
        await stop


def main() -> None:
    """Entry point: ``python -m bench.p0_server --port N``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_nofile()
    asyncio.run(amain(args.port))


if __name__ == "__main__":
    main()
