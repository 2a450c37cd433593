"""The "other process" of scenario 2: push one notification to each of N users, ``reps`` times.

``python -m bench.pushers app|app_many|naive|p0 < config.json``

- ``app``: ``notifications.services.notify(user, text)`` per user (stores and pushes on commit),
  with the app's own settings (``DJANGO_SETTINGS_MODULE=social.settings``).
- ``app_many``: one ``notifications.services.notify_many(users, text)`` per burst, when the
  app has it (its bulk path: one insert, pushes from one event-loop hop).
- ``naive``: the tutorial way, ``async_to_sync(channel_layer.group_send)("user_<id>", ...)``
  per user with the P1 settings.
- ``p0``: one WebSocket to the P0 server's ``/push/`` path, one frame per user.

Each notification text carries ``bm:<tag>:<rep>:<uid>:<time_ns at the call>``. Stdout gets
``{"event": "start"}`` right before the first burst and ``{"event": "done", "bursts": [...]}`` at
the end (per burst: wall-clock ns at its start and end).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
PushOne = Callable[[Json, str], None]


def _emit(obj: Json) -> None:
    print(json.dumps(obj), flush=True)


def run_bursts(cfg: Json, push_one: PushOne, setup_s: float, flush: Callable[[], None] | None = None) -> None:
    """Time ``reps`` bursts of ``push_one`` over all users, pausing ``gap_s`` between them."""
    bursts = []
    _emit({"event": "start"})
    for rep in range(int(cfg["reps"])):
        t_start = time.time_ns()
        for user in cfg["users"]:
            push_one(user, f"bm:{cfg['tag']}:{rep}:{user['id']}:{time.time_ns()}")
        if flush is not None:
            flush()
        bursts.append({"t_start_ns": t_start, "t_end_ns": time.time_ns()})
        time.sleep(float(cfg.get("gap_s", 1.5)))
    _emit({"event": "done", "bursts": bursts, "setup_s": round(setup_s, 2)})


def push_app(cfg: Json) -> None:
    """Call the app's ``notify()`` for every user (users preloaded, so only notify() is timed)."""
    t0 = time.monotonic()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from bench.djtool import resolve_notify

    notify = resolve_notify()
    by_id = get_user_model().objects.in_bulk([u["id"] for u in cfg["users"]])

    def push_one(user: Json, text: str) -> None:
        notify(by_id[user["id"]], text)

    run_bursts(cfg, push_one, time.monotonic() - t0)


def push_app_many(cfg: Json) -> None:
    """One ``notify_many(users, text)`` per burst: the app's bulk path for jobs."""
    t0 = time.monotonic()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from notifications.services import notify_many

    by_id = get_user_model().objects.in_bulk([u["id"] for u in cfg["users"]])
    users = [by_id[u["id"]] for u in cfg["users"]]
    bursts = []
    _emit({"event": "start"})
    for rep in range(int(cfg["reps"])):
        t_start = time.time_ns()
        # One text for everybody, stamped with the burst's start: latency is from the call.
        notify_many(users, f"bm:{cfg['tag']}:{rep}:0:{t_start}")
        bursts.append({"t_start_ns": t_start, "t_end_ns": time.time_ns()})
        time.sleep(float(cfg.get("gap_s", 1.5)))
    _emit({"event": "done", "bursts": bursts, "setup_s": round(time.monotonic() - t0, 2)})


def push_naive(cfg: Json) -> None:
    """The tutorial's ``async_to_sync(group_send)`` per user through the P1 settings."""
    t0 = time.monotonic()
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.naive_settings"
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    assert layer is not None
    ids = iter(range(1, 10**9))

    def push_one(user: Json, text: str) -> None:
        note = {
            "id": next(ids),
            "kind": "system",
            "actor": None,
            "text": text,
            "url": None,
            "created_at": "",
            "read": False,
        }
        async_to_sync(layer.group_send)(
            f"user_{user['id']}", {"type": "notify.message", "notification": note, "unread": 1}
        )

    run_bursts(cfg, push_one, time.monotonic() - t0)


def push_p0(cfg: Json) -> None:
    """Send push frames to the P0 server over one WebSocket."""
    from websockets.sync.client import connect

    t0 = time.monotonic()
    with connect(f"ws://127.0.0.1:{int(cfg['port'])}/push/", compression=None) as ws:

        def push_one(user: Json, text: str) -> None:
            ws.send(json.dumps({"type": "push", "user": user["id"], "text": text}))

        run_bursts(cfg, push_one, time.monotonic() - t0)


def main() -> None:
    """Entry point: ``python -m bench.pushers app|naive|p0`` with the config on stdin."""
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    cfg = json.load(sys.stdin)
    runners = {"app": push_app, "app_many": push_app_many, "naive": push_naive, "p0": push_p0}
    if mode not in runners:
        raise SystemExit("usage: python -m bench.pushers app|app_many|naive|p0 < config.json")
    runners[mode](cfg)


if __name__ == "__main__":
    main()
