"""A small non-browser client of the service (docs/protocol.md), on the ``websockets`` library.

    pip install websockets        # or: pip install -r requirements-dev.txt
    python examples/client.py --url http://127.0.0.1:8000 --user alice --password demo-pass-123 \
        --dm bob --send "hello from a script"

It logs in through the allauth form (GET the page for the ``csrftoken`` cookie, POST
the form), opens the bell (``/ws/notifications/``) and a DM (``/ws/dm/<user>/``) with
the session cookie and an ``Origin`` header, sends a message with a ``client_id``,
and keeps both sockets open. After a disconnect the bell reconnects with
``?after=<newest notification id it has>`` and the DM with ``?since=<highest message
version it has>``, so each gets what it missed (new messages, and edits, deletes and
reactions of older ones) exactly once; it backs off with jitter on
1000/1001/1006/1011/1012/4012/4429, reconnects at once on 4001, and stops on
4401/4403/4404. Each event is printed as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

# Close codes (docs/protocol.md, "Close codes").
STOP = {4401: "not logged in", 4403: "not allowed", 4404: "no such user or room"}
RECONNECT_AT_ONCE = {4001}  # the session changed: the new handshake is authenticated afresh


class LoginFailed(Exception):
    """The login form did not give a session cookie."""


def log(event: str, **fields: Any) -> None:
    """One JSON line per event on stdout."""
    print(json.dumps({"event": event, **fields}, ensure_ascii=False), flush=True)


def login(*, base_url: str, username: str, password: str) -> str:
    """Log in with the allauth form; return the ``Cookie`` header value carrying the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    login_url = f"{base_url}/accounts/login/"
    opener.open(login_url, timeout=10).close()
    token = next((cookie.value for cookie in jar if cookie.name == "csrftoken"), None)
    if token is None:
        raise LoginFailed("the login page set no csrftoken cookie")
    form = urllib.parse.urlencode({"login": username, "password": password, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(
        login_url,
        data=form.encode(),
        headers={"Referer": login_url, "Origin": base_url, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        opener.open(request, timeout=10).close()
    except urllib.error.HTTPError as answer:
        if answer.code != 302:
            raise LoginFailed(f"login answered {answer.code}") from None
    if not any(cookie.name == "sessionid" for cookie in jar):
        raise LoginFailed("wrong username or password")
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 302 after a good login is the answer; its cookie is all we need


class Socket:
    """One WebSocket that resumes with ``after`` and backs off with jitter."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        path: str,
        cookie: str,
        on_frame: Callable[[Socket, dict[str, Any]], None] | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.path = path
        self.cookie = cookie
        self.on_frame = on_frame
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.after: int | None = None  # the bell: the newest notification id seen
        # DM and room sockets: the highest message version seen (protocol 1.1), so a
        # reconnect also gets the edits, deletes and reactions it missed.
        self.since: int | None = None
        self.connection: Any = None
        self.ready = asyncio.Event()
        self.stopped: int | None = None  # the close code that stopped it

    def url(self) -> str:
        """The socket's ws(s):// URL, with the resume point once there is one."""
        scheme, rest = self.base_url.split("://", 1)
        if self.since is not None:
            query = f"?since={self.since}"
        else:
            query = f"?after={self.after}" if self.after is not None else ""
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{self.path}{query}"

    async def run(self) -> None:
        """Connect, read, reconnect; return when a close code says not to reconnect."""
        attempt = 0
        while True:
            code = await self.connect_once()
            if self.ready.is_set():
                attempt = 0  # this connection worked: start the back-off afresh
            self.ready.clear()
            if code in STOP:
                self.stopped = code
                log("stopped", socket=self.name, code=code, reason=STOP[code])
                return
            if code in RECONNECT_AT_ONCE:
                delay = 0.0
            else:
                ceiling = min(self.backoff_max, self.backoff_initial * 2**attempt)
                delay = random.uniform(ceiling / 2, ceiling)  # jitter: clients do not return in step
                attempt += 1
            log("closed", socket=self.name, code=code, retry_in=round(delay, 3))
            await asyncio.sleep(delay)

    async def connect_once(self) -> int:
        """One connection until it closes; its close code (1006 when there was none)."""
        url = self.url()
        try:
            async with connect(url, origin=self.base_url, additional_headers={"Cookie": self.cookie}) as connection:
                self.connection = connection
                log("connected", socket=self.name, url=url)
                try:
                    async for text in connection:
                        self.receive(json.loads(text))
                except ConnectionClosed:
                    pass
                return connection.close_code or 1006
        except InvalidStatus as refused:
            # 403 is a foreign or missing Origin: retrying cannot help.
            status = refused.response.status_code
            log("refused", socket=self.name, status=status)
            return 4403 if status == 403 else 1006
        except OSError as error:
            log("unreachable", socket=self.name, error=str(error))
            return 1006
        finally:
            self.connection = None

    def receive(self, frame: dict[str, Any]) -> None:
        """Track the resume point, then hand the frame on."""
        if frame.get("type") == "notification":
            self.after = max(self.after or 0, frame["notification"]["id"])
        elif frame.get("type") in ("message", "message_update") and not self.path.startswith("/ws/notifications/"):
            # (On the bell, ``message`` frames are the user's rooms' news, not a resume point.)
            self.since = max(self.since or 0, frame["message"]["version"])
        if frame.get("type") == "ready":
            self.ready.set()
        log("frame", socket=self.name, frame=frame)
        if self.on_frame is not None:
            self.on_frame(self, frame)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame on the open connection."""
        await self.connection.send(json.dumps(frame))


class Outbox:
    """Messages sent but not yet echoed; resent with the same ``client_id`` after a reconnect."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}
        self.sending: set[asyncio.Task[None]] = set()

    def add(self, body: str) -> None:
        """Queue a message under a fresh client_id."""
        self.pending[uuid.uuid4().hex] = body

    def on_frame(self, socket: Socket, frame: dict[str, Any]) -> None:
        """The echo acknowledges; ``ready`` after a reconnect resends what was not acknowledged."""
        if frame["type"] == "message":
            self.pending.pop(frame["message"].get("client_id") or "", None)
        elif frame["type"] == "ready":
            for client_id, body in self.pending.items():
                task = asyncio.get_running_loop().create_task(
                    socket.send({"type": "message", "body": body, "client_id": client_id})
                )
                self.sending.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self.sending.discard)


async def main(argv: list[str] | None = None) -> int:
    """Run the bell and (optionally) a DM until one is stopped, ``--seconds`` passed or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the site, as a browser opens it")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--dm", help="open the direct-message socket with this user")
    parser.add_argument("--send", action="append", default=[], help="a message to send in the DM (repeatable)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until Ctrl-C)")
    parser.add_argument("--backoff", type=float, default=1.0, help="first reconnect delay in seconds (default 1)")
    args = parser.parse_args(argv)
    base_url = args.url.rstrip("/")
    try:
        cookie = login(base_url=base_url, username=args.user, password=args.password)
    except (LoginFailed, OSError) as error:
        log("login_failed", error=str(error))
        return 2
    log("logged_in", user=args.user)
    bell = Socket(
        name="bell", base_url=base_url, path="/ws/notifications/", cookie=cookie, backoff_initial=args.backoff
    )
    sockets = [bell]
    outbox = Outbox()
    if args.dm:
        dm = Socket(
            name="dm",
            base_url=base_url,
            path=f"/ws/dm/{urllib.parse.quote(args.dm)}/",
            cookie=cookie,
            on_frame=outbox.on_frame,
            backoff_initial=args.backoff,
        )
        sockets.append(dm)
        for body in args.send:
            outbox.add(body)  # sent when the DM's ready arrives, again after each reconnect until echoed
    runs = [asyncio.create_task(socket.run()) for socket in sockets]
    # A socket returns only when told not to reconnect (4401/4403/4404): then the client stops.
    done, running = await asyncio.wait(runs, timeout=args.seconds, return_when=asyncio.FIRST_COMPLETED)
    for run in running:
        run.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    return 1 if done else 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
