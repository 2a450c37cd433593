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


def push_storm(cfg: Json) -> None:
    """Scenario 8's other process: room messages, DMs and notifications at ``rate`` a second, round
    robin, through the app's services (stored, published on commit) until SIGINT; then every stored
    id, so the clients can be checked for lost and doubled ones."""
    import signal

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from dm.models import Conversation
    from dm.services import message_send
    from notifications.services import notify

    users = get_user_model().objects.in_bulk(
        [cfg["room_sender"], *(peer for _, peer in cfg["dm_pairs"]), *cfg["notify_users"]]
    )
    rooms = list(Conversation.objects.filter(pk__in=cfg["room_ids"]).order_by("pk"))
    directs = Conversation.objects.in_bulk([conversation for conversation, _ in cfg["dm_pairs"]])
    sends: list[Callable[[int], tuple[str, int, int]]] = []

    def room_message(n: int) -> tuple[str, int, int]:
        room = rooms[n % len(rooms)]
        body = f"bm:{cfg['tag']}:room:{n}"
        result = message_send(sender=users[cfg["room_sender"]], conversation=room, body=body, client_id=None)
        return "message", room.pk, result.message.pk

    def dm_message(n: int) -> tuple[str, int, int]:
        conversation, peer = cfg["dm_pairs"][n % len(cfg["dm_pairs"])]
        sender = users[peer]
        result = message_send(
            sender=sender, conversation=directs[conversation], body=f"bm:{cfg['tag']}:dm:{n}", client_id=None
        )
        return "message", conversation, result.message.pk

    def notification(n: int) -> tuple[str, int, int]:
        user_id = cfg["notify_users"][n % len(cfg["notify_users"])]
        row = notify(users[user_id], f"bm:{cfg['tag']}:note:{n}")
        return "notification", user_id, row.pk

    for kind, share in (("room", room_message), ("dm", dm_message), ("notification", notification)):
        sends += [share] * int(cfg["mix"][kind])
    stopping = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stopping.update(now=True))
    sent: list[tuple[str, int, int]] = []
    gap = 1.0 / float(cfg["rate"])
    _emit({"event": "start"})
    t0 = time.monotonic()
    n = 0
    while not stopping["now"]:
        try:
            sent.append(sends[n % len(sends)](n))
        except Exception as exc:  # noqa: BLE001 - counted: a send that failed is not expected anywhere
            sent.append(("error", 0, 0))
            print(f"storm send failed: {exc}", file=sys.stderr, flush=True)
        n += 1
        time.sleep(max(0.0, t0 + n * gap - time.monotonic()))
    _emit({"event": "done", "sent": sent, "seconds": round(time.monotonic() - t0, 2)})


def main() -> None:
    """Entry point: ``python -m bench.pushers app|app_many|naive|p0|storm`` with the config on stdin."""
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    cfg = json.load(sys.stdin)
    runners = {"app": push_app, "app_many": push_app_many, "naive": push_naive, "p0": push_p0, "storm": push_storm}
    if mode not in runners:
        raise SystemExit("usage: python -m bench.pushers app|app_many|naive|p0|storm < config.json")
    runners[mode](cfg)


if __name__ == "__main__":
    main()
