"""The base consumer every socket of the service is built on.

It owns what all sockets share: the login gate (4401), the per-user socket cap,
flood limits (``rate_limited`` error frames, then 4429), JSON parsing with error
frames instead of 1011 closes, dispatch to a fixed table of handlers, group
membership (re-added on every heartbeat so a restarted Redis cannot leave a
socket deaf), session revocation, and relaying frames serialised once per
``group_send``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from social.realtime import admission, inbox, limits, protocol, wire
from social.realtime import heartbeat as beats
from social.realtime.auth import SESSION_KEY_SCOPE, session_still_valid
from social.realtime.groups import control_group

log = logging.getLogger(__name__)


class Denied(Exception):
    """Refuse the socket (at connect) or the frame (later) with a close code."""

    def __init__(self, close_code: int, message: str = "not allowed") -> None:
        super().__init__(message)
        self.close_code = close_code
        self.message = message


class RealtimeConsumer(AsyncWebsocketConsumer):
    """Shared behaviour; subclasses fill ``frame_handlers`` and the hooks."""

    # Client frame type -> name of the coroutine method that handles it.
    frame_handlers: ClassVar[dict[str, str]] = {}
    # Frame types whose handler only queues work that answers by itself, in
    # order: the next such frame is read without waiting. Any other frame, and
    # any error, waits for that work first (``settle``).
    queued_frames: ClassVar[frozenset[str]] = frozenset()
    # Resume points the socket's query string may carry (``?after=``, ``?since=``).
    resume_cursors: ClassVar[tuple[str, ...]] = ("after",)

    user_id: int
    # Loop time of the next session re-check (heartbeat).
    next_recheck: float
    # Each resume cursor as given (None when absent or malformed).
    cursors: dict[str, int | None]
    # Closed at connect (4401, 4403, 4429...): frames that still arrive are ignored.
    refused = False
    # Highest row id this socket sent in its resume replay. The socket joins its
    # groups before it reads the replay (so nothing falls between the two), which
    # means a row stored in that window arrives twice: live copies up to here are dropped.
    replayed_up_to: int = 0
    # The same for versions, after a replay by version: live copies of changes up
    # to here (``version`` of the relayed event) were replayed and are dropped.
    replayed_version: int = 0

    # Hooks for subclasses.

    async def authorize(self) -> None:
        """Raise Denied to refuse the socket after the login check."""

    def group_names(self) -> list[str]:
        """Groups this socket listens on besides the user's control group."""
        return []

    async def start(self) -> None:
        """After accept and group joins: send the resume replay and ``ready``."""

    async def heartbeat(self) -> None:
        """Periodic work every HEARTBEAT_SECONDS (presence refresh)."""

    async def stop(self) -> None:
        """Clean-up after the socket closed (presence)."""

    async def settle(self) -> None:
        """Finish the work ``queued_frames`` left running (before answering anything else)."""

    async def still_allowed(self) -> bool:
        """Re-checked on ``access.check`` events: False closes with 4403."""
        return True

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the handler for a message, without Channels' per-message connection check.

        Stock ``dispatch`` hops to the single sync thread (close_old_connections)
        before every message, relayed frames included: that hop, not the frame,
        capped fan-out at a few thousand deliveries a second. Every database call
        here goes through ``database_sync_to_async``, which does that check itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        queued = message.pop(protocol.QUEUED_KEY, False)
        try:
            await handler(message)
        finally:
            if queued:
                self.backlog -= 1

    # Connection lifecycle.

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the socket on one task where the layer supports it (``social.realtime.inbox``)."""
        try:
            layer = get_channel_layer(self.channel_layer_alias)
            if inbox.supported(layer):
                await inbox.serve(self, layer, scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            # disconnect() stops the relays and the heartbeat too, but Channels skips it when
            # a handler raises: a dead socket must stay registered with neither.
            beats.unregister(self)
            if getattr(self, "channel_layer", None) is not None and getattr(self, "channel_name", None):
                self.relay_directly(None)

    async def connect(self) -> None:
        """Gate, authorise, join groups, accept, replay; refusals close with a 44xx code."""
        try:
            await self.handshake()
        finally:
            self.handshake_done()

    def handshake_done(self) -> None:
        """Live, refused, failed or waiting on its client: the next waiting handshake may start
        (admission.py). Idempotent."""
        admission.handshake_done(self.scope)

    async def handshake(self) -> None:
        """``connect`` up to the socket being live or refused."""
        self.joined: list[str] = []
        self.registered = False
        self.strikes = 0
        # Direct relays (pub/sub layer): sent at once once the socket is live and
        # nothing it declined is still waiting in its queue, so frames keep their order.
        self.live = False
        self.backlog = 0
        self.writer: wire.DirectWriter | None = None
        # Direct sends in flight (the loop keeps only weak references to tasks); made when needed.
        self.sending: set[asyncio.Future[None]] | None = None
        # daphne's TCP transport (None elsewhere), to see what the client has not read.
        self.transport: Any = None
        self.overflowed = False
        config = settings.REALTIME
        self.bucket = limits.TokenBucket(rate=config["RATE_PER_SECOND"], burst=config["RATE_BURST"])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(protocol.CLOSE_NOT_LOGGED_IN)
            return
        self.user = user
        self.user_id = user.pk
        self.session_key = self.scope.get(SESSION_KEY_SCOPE)
        try:
            await self.open()
        except Denied as denied:
            await self.refuse(denied.close_code, denied.message)
        except Exception:
            # Channels never calls disconnect() for a consumer whose connect
            # raised, so clean up here or its groups keep a dead channel for
            # days; then let daphne close with 1011.
            await self.disconnect(1011)
            raise

    async def open(self) -> None:
        """Everything after the login gate; raises Denied to refuse."""
        config = settings.REALTIME
        cursor_errors = []
        self.cursors = {}
        for name in self.resume_cursors:
            try:
                self.cursors[name] = protocol.parse_cursor(self.query_param(name), name)
            except protocol.ProtocolError as error:
                self.cursors[name] = None
                cursor_errors.append(error)
        registry = await limits.socket_opened(self.user_id, self.channel_name)
        self.registered = True
        if registry.connects > config["CONNECTS_PER_MINUTE"]:
            # Connect/close churn costs every room member a join and a leave
            # while no frame budget applies: refused before any of that.
            raise Denied(protocol.CLOSE_FLOODING, f"more than {config['CONNECTS_PER_MINUTE']} connections a minute")
        if registry.sockets > config["MAX_SOCKETS_PER_USER"]:
            raise Denied(protocol.CLOSE_FLOODING, f"more than {config['MAX_SOCKETS_PER_USER']} open sockets")
        await self.authorize()
        # Before joining: from now on every group message passes relay_now, so
        # it can count what it queues.
        self.relay_directly(self.relay_now)
        await self.join_groups()
        await self.accept()
        connection = wire.daphne_connection(self.base_send)
        self.transport = connection[1] if connection is not None else None
        for error in cursor_errors:
            # Say so, then carry on as a connect without that resume point.
            await self.send_error(error.code, error.message)
        await self.start()
        self.writer = wire.direct_writer(self.base_send)
        self.live = True
        recheck_every = settings.REALTIME["SESSION_RECHECK_SECONDS"]
        self.next_recheck = asyncio.get_running_loop().time() + recheck_every * random.uniform(0.5, 1.0)
        beats.register(self)

    async def close_settled(self, code: int) -> None:
        """Close once the work ``queued_frames`` left running has answered (never from inside it).

        Events and the heartbeat close the socket from outside the frame
        loop; the messages read before still get their echoes or errors.
        """
        await self.settle()
        await self.close(code)

    async def refuse(self, code: int, message: str | None = None) -> None:
        """Accept then close with an application code, so the client can tell why."""
        self.refused = True
        await self.accept()
        if message:
            await self.send_frame(protocol.error_frame(protocol.FORBIDDEN, message))
        await self.close(code)

    async def disconnect(self, code: int) -> None:
        """Finish queued work, leave groups, free the socket slot, run the subclass clean-up (presence)."""
        # What the client sent before it went is stored and published, not dropped.
        await self.settle()
        beats.unregister(self)
        self.relay_directly(None)
        layer = self.channel_layer
        joined, self.joined = self.joined, []
        for group in joined:
            try:
                await layer.group_discard(group, self.channel_name)
            except Exception:
                log.warning("group_discard %s failed", group, exc_info=True)
        if self.registered:
            self.registered = False
            await limits.socket_closed(self.user_id, self.channel_name)
        if joined:
            try:
                await self.stop()
            except Exception:
                log.exception("clean-up failed for %s", self.channel_name)

    async def join_groups(self) -> None:
        """Join (or re-join) this socket's groups; group_add is idempotent."""
        groups = [control_group(self.user_id), *self.group_names()]
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups

    async def beat(self) -> bool:
        """One heartbeat (``social.realtime.heartbeat`` calls it every HEARTBEAT_SECONDS): refresh the
        socket registry and run the subclass beat (presence); every SESSION_RECHECK_SECONDS re-check
        the session and re-join the groups. False once the socket was closed.

        Revocation and Redis restarts arrive as events (session.*, layer.recovered),
        so the slow check is only a safety net (session expiry, a lost event) and
        stays cheap with thousands of idle sockets.
        """
        loop = asyncio.get_running_loop()
        try:
            if loop.time() >= self.next_recheck:
                # Jitter spreads thousands of sockets' checks over the interval.
                recheck_every = settings.REALTIME["SESSION_RECHECK_SECONDS"]
                self.next_recheck = loop.time() + recheck_every * random.uniform(0.8, 1.2)
                if not await database_sync_to_async(session_still_valid)(self.session_key, self.user_id):
                    await self.close_settled(protocol.CLOSE_REAUTHENTICATE)
                    return False
                if not await self.still_allowed():
                    # A lost access.check event (removed from a room, blocked).
                    await self.close_settled(protocol.CLOSE_FORBIDDEN)
                    return False
                await self.join_groups()
            await limits.socket_alive(self.user_id, self.channel_name)
            await self.heartbeat()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A Redis or database outage must not kill the socket; try again next beat.
            log.warning("heartbeat failed for %s", self.channel_name, exc_info=True)
        return True

    # Incoming frames.

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Rate-limit, parse and dispatch one client frame; every failure becomes an error frame."""
        client_id = message_id = None
        if self.refused:
            # Frames the client sent before it read the close: nothing was opened for them.
            return
        try:
            if not await self.within_rate():
                return
            frame = protocol.parse_frame(text_data, bytes_data)
            client_id, message_id = protocol.echo_client_id(frame), protocol.echo_message_id(frame)
            handler_name = self.frame_handlers.get(frame["type"])
            if handler_name is None:
                raise protocol.ProtocolError(protocol.UNKNOWN_TYPE, f"unknown frame type {frame['type'][:40]!r}")
            if frame["type"] not in self.queued_frames:
                # Answers go out in the order their frames came in.
                await self.settle()
            handler: Callable[[dict[str, Any]], Awaitable[None]] = getattr(self, handler_name)
            await handler(frame)
        except Exception as error:
            await self.settle()
            await self.answer_failure(error, client_id, message_id)

    async def answer_failure(self, error: Exception, client_id: str | None, message_id: int | None = None) -> None:
        """Answer a frame that failed: an error frame (echoing its client_id or message_id), and
        for a refusal the close."""
        if isinstance(error, protocol.ProtocolError):
            await self.send_error(error.code, error.message, error.client_id or client_id, error.message_id)
        elif isinstance(error, Denied):
            await self.send_error(protocol.FORBIDDEN, error.message, client_id, message_id)
            await self.close(error.close_code)
        else:
            log.error("frame handling failed on %s", self.channel_name, exc_info=error)
            failed = "the server could not handle this frame; try again"
            await self.send_error(protocol.SERVER_ERROR, failed, client_id, message_id)

    async def within_rate(self) -> bool:
        """Apply the per-connection and per-user flood limits to one incoming frame."""
        allowed = self.bucket.take() and await limits.user_frame_allowed(self.user_id)
        if allowed:
            self.strikes = 0
            return True
        self.strikes += 1
        await self.settle()
        if self.strikes > settings.REALTIME["RATE_STRIKES_BEFORE_CLOSE"]:
            await self.close(protocol.CLOSE_FLOODING)
        else:
            await self.send_error(protocol.RATE_LIMITED, "too many frames; slow down")
        return False

    async def send_frame(self, frame: dict[str, Any]) -> None:
        """Serialise and send one frame to this socket."""
        await self.send(text_data=protocol.encode(frame))

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Send, unless the socket is being closed for not reading; then check what is queued."""
        if self.overflowed:
            return
        await super().send(text_data, bytes_data, close)
        self.check_buffered()

    def check_buffered(self) -> None:
        """Close a socket whose client has left more than MAX_BUFFERED_BYTES unread.

        A client that never reads (but sends a frame now and then, which keeps
        daphne's ping timer happy) would otherwise make the server hold every
        frame for it, without bound. Nothing more is sent to it; the close
        frame queues behind the backlog, and daphne drops the connection when
        the closing handshake does not complete (autobahn's
        closeHandshakeTimeout). Its client resumes with ``after``.
        """
        if self.transport is None or self.overflowed:
            return
        if wire.buffered_bytes(self.transport) <= settings.REALTIME["MAX_BUFFERED_BYTES"]:
            return
        self.overflowed = True
        log.info("closing %s: its client left %d bytes unread", self.channel_name, wire.buffered_bytes(self.transport))
        self.keep(asyncio.ensure_future(self.close(protocol.CLOSE_TOO_SLOW)))

    async def drained(self) -> None:
        """Wait while half the buffer allowance is still unread (a resume replay paces itself by this).

        A replay is sent all at once; a client on a slow link must not be
        closed for being slow to take a backlog that is legitimately large.
        """
        if self.transport is None:
            return
        limit = settings.REALTIME["MAX_BUFFERED_BYTES"] // 2
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.REALTIME["DRAIN_TIMEOUT_SECONDS"]
        while wire.buffered_bytes(self.transport) > limit and not self.transport.disconnected:
            # Waiting on the client is not work: a client that does not read must not
            # hold one of the few handshake slots for the whole drain timeout.
            self.handshake_done()
            if loop.time() > deadline:
                self.check_buffered()
                return
            await asyncio.sleep(0.02)

    async def send_error(
        self, code: str, message: str, client_id: str | None = None, message_id: int | None = None
    ) -> None:
        """Answer a bad frame; the socket stays open."""
        await self.send_frame(protocol.error_frame(code, message, client_id, message_id))

    def query_param(self, name: str) -> str | None:
        """One value from the socket URL's query string."""
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[-1] if values else None

    # Channel-layer events (handler names are server constants in protocol.py).

    async def frame_relay(self, event: dict[str, Any]) -> None:
        """Forward a frame that was serialised once for the whole group."""
        if self.wants(event):
            await self.send(text_data=event["text"])

    def wants(self, event: dict[str, Any]) -> bool:
        """Whether a relayed frame is for this socket (not excluded, not replayed, not blocked)."""
        if event.get("exclude_user") == self.user_id or event.get("exclude_channel") == self.channel_name:
            return False
        seq = event.get("seq")
        if seq is not None and seq <= self.replayed_up_to:
            return False
        version = event.get("version")
        if version is not None and version <= self.replayed_version:
            return False
        return self.accepts_from(event.get("sender"))

    def relay_directly(self, handler: Callable[[dict[str, Any]], bool] | None) -> None:
        """Take group messages straight from a layer that fans out in-process (pub/sub)."""
        register = getattr(self.channel_layer, "relay_directly", None)
        if register is not None:
            register(self.channel_name, handler)

    def relay_now(self, event: dict[str, Any]) -> bool:
        """A group message offered by the layer: True when a relayed frame was handled at once.

        Runs inside the layer's reader, so it never awaits: under daphne it
        writes the group's pre-built frame to the socket (``wire``), elsewhere
        it starts the ASGI send. Declined (queued, then dispatched as usual):
        anything but a relayed frame, and everything while the socket is still
        replaying or has a backlog, which is what keeps frames in the order
        they were published.
        """
        if not self.live or self.backlog or event.get("type") != protocol.EVENT_RELAY:
            self.backlog += 1
            return False
        if self.overflowed or not self.wants(event):
            return True
        if self.writer is not None:
            if self.writer.write(wire.text_frame(event["text"])):
                self.check_buffered()
                return True
            self.writer = None
        self.keep(asyncio.ensure_future(self.base_send({"type": "websocket.send", "text": event["text"]})))
        return True

    def keep(self, sending: asyncio.Future[None]) -> None:
        """Hold a direct send until it is done (the loop keeps only weak references to tasks)."""
        if self.sending is None:
            self.sending = set()
        self.sending.add(sending)
        sending.add_done_callback(self.sent)

    def sent(self, sending: asyncio.Future[None]) -> None:
        """A direct send finished; one to a socket that has just closed may fail, which is harmless."""
        if self.sending is not None:
            self.sending.discard(sending)
        if not sending.cancelled() and sending.exception() is not None:
            log.debug("relay to %s failed", self.channel_name, exc_info=sending.exception())
        self.check_buffered()

    def accepts_from(self, sender_id: int | None) -> bool:
        """False for frames from users this socket's user has blocked."""
        return True

    async def session_end(self, event: dict[str, Any]) -> None:
        """This session logged out: close its sockets."""
        if event.get("session_key") == self.session_key:
            await self.close_settled(protocol.CLOSE_NOT_LOGGED_IN)

    async def session_check(self, event: dict[str, Any]) -> None:
        """The user's sessions may have changed: re-check this socket's.

        A password change in this very browser cycles its session key, so a
        failed check cannot tell "logged out elsewhere" from "key renewed here":
        close with 4001 and let the client reconnect with whatever cookie it has.
        """
        if not await database_sync_to_async(session_still_valid)(self.session_key, self.user_id):
            await self.close_settled(protocol.CLOSE_REAUTHENTICATE)

    async def layer_recovered(self, event: dict[str, Any]) -> None:
        """The channel layer was unreachable: pushes were lost and a restarted Redis
        forgot this socket's groups. Close with 4012 so the client resumes with
        ``after`` and gets everything it missed."""
        await self.close_settled(protocol.CLOSE_RESUME)

    async def access_check(self, event: dict[str, Any]) -> None:
        """Membership or blocks changed: re-check this socket's access."""
        if not await self.still_allowed():
            await self.close_settled(protocol.CLOSE_FORBIDDEN)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Every WebSocket path no route serves: accepted and closed with 4404.

    Without it URLRouter raises for an unknown path and daphne answers 500
    with a traceback in the log; a client is better told "no such thing".
    """

    async def connect(self) -> None:
        await self.accept()
        await self.close(protocol.CLOSE_NOT_FOUND)
        admission.handshake_done(self.scope)
