"""Run daphne with the service's deliberate server limits.

``python -m social.serve [--port 8000] [--bind 127.0.0.1] [--fd N]``. The
Makefile, the end-to-end tests, the benchmarks and the production example all
start the server through here, so every one of them runs with the same limits.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import resource
import sys
from typing import Any

from social import envfile

log = logging.getLogger("social.serve")

# Frames larger than this are cut off by daphne (close 1009) before the app
# reads them; the app's own limits (settings.REALTIME) are smaller still.
MAX_MESSAGE_BYTES = 64 * 1024
# Keepalive pings find dead peers (a laptop lid closed) within a minute. They
# also bound what a reader that stopped reading can cost: its ping cannot get
# through the backed-up buffer, so daphne drops it after interval + timeout.
PING_INTERVAL = int(os.environ.get("DAPHNE_PING_INTERVAL", "20"))
PING_TIMEOUT = int(os.environ.get("DAPHNE_PING_TIMEOUT", "30"))
# A handshake the app has not accepted by then is dropped by daphne; the app's
# admission control (social/realtime/admission.py) refuses the ones that would
# wait longer before doing any work for them.
HANDSHAKE_TIMEOUT = int(os.environ.get("DAPHNE_CONNECT_TIMEOUT", "60"))
# Sockets live at most a day; channels-redis group_expiry is set above this.
WEBSOCKET_TIMEOUT = 86400


def daphne_argv(*, bind: str = "127.0.0.1", port: int | None = 8000, fd: int | None = None) -> list[str]:
    """The daphne command line for this service."""
    where = ["--fd", str(fd)] if fd is not None else ["-b", bind, "-p", str(port)]
    return [
        "daphne",
        *where,
        "--websocket-max-message-size",
        str(MAX_MESSAGE_BYTES),
        "--websocket-max-frame-size",
        str(MAX_MESSAGE_BYTES),
        "--ping-interval",
        str(PING_INTERVAL),
        "--ping-timeout",
        str(PING_TIMEOUT),
        "--websocket_timeout",
        str(WEBSOCKET_TIMEOUT),
        "--websocket_connect_timeout",
        str(HANDSHAKE_TIMEOUT),
        "--application-close-timeout",
        "5",
        "social.asgi:application",
    ]


def raise_open_file_limit() -> None:
    """Each socket is a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def use_uvloop() -> None:
    """Run daphne's Twisted reactor on uvloop instead of asyncio's selector loop.

    Must happen before daphne is imported: it installs the reactor on a new
    event loop at import. Every write to a socket registers and drops a writer
    with the loop; uvloop does that in C (quick bench: most room deliveries per
    second on one process ~6,800-7,900 -> ~8,400-9,600, docs/benchmarks.md).
    """
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def load_app_then_tune_gc() -> None:
    """Load the app before daphne serves it, then keep the garbage collector off it.

    Everything imported at start-up lives as long as the process, yet every
    full collection walked it all: ~70 ms pauses that were the p99 of room
    fan-out. Frozen, it is never walked; with higher thresholds the young
    generations are collected less often (per-message garbage is freed by
    reference counting anyway).
    """
    import daphne.server  # noqa: F401  (installs the Twisted reactor, which must come first)

    import social.asgi  # noqa: F401

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def serving_line(*, host: str, port: int) -> str:
    """The one start-up log line: the bound address, the channel layer and the database."""
    from django.conf import settings
    from django.db import connection

    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    reach = "shared through Redis" if settings.REDIS_URL else "this process only"
    return (
        f"serving http://{host}:{port}/ (channel layer {layer}, {reach}; "
        f"database {connection.vendor} {connection.settings_dict['NAME']})"
    )


def announcing_server_class() -> type:
    """daphne's Server, logging ``serving_line`` once each listening address is bound, with a lighter
    input queue per connection (``social.inputqueue``) where that applies."""
    from daphne.server import Server

    from social import inputqueue

    lean = inputqueue.applies()
    if not lean:
        log.warning("daphne is not %s: its own input queues are used", inputqueue.DAPHNE_VERSION)

    class AnnouncingServer(Server):
        def listen_success(self, port: Any) -> None:
            super().listen_success(port)
            address = port.getHost()
            log.info("%s", serving_line(host=address.host, port=address.port))

        def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
            if lean:
                return inputqueue.create_application(self, protocol, scope)
            return super().create_application(protocol, scope)

    return AnnouncingServer


def main(argv: list[str] | None = None) -> None:
    """Parse the few options, lift the file limit and hand over to daphne."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, default=None)
    args = parser.parse_args(argv)
    envfile.load()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
    raise_open_file_limit()
    if os.environ.get("SERVER_UVLOOP", "1") != "0":
        use_uvloop()
    load_app_then_tune_gc()
    from daphne.cli import CommandLineInterface

    CommandLineInterface.server_class = announcing_server_class()
    sys.argv = daphne_argv(bind=args.bind, port=args.port, fd=args.fd)
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
