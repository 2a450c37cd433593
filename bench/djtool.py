"""Django-side helpers for the bench, run in a subprocess with the app's settings.

``python -m bench.djtool setup < {"users": N, "room_slug": "...", "dm_pairs": P}``
    creates users ``bench00000...`` with unusable passwords (no hashing cost), one logged-in DB
    session each, a public room and P direct conversations; prints
    ``{"users": [{"id", "username", "session"}...], "cookie_name": ..., "room": slug}``.
``python -m bench.djtool count < {"prefixes": [...]}``
    prints, per body prefix, how many messages are stored and the first/last ``created_at``.
``python -m bench.djtool storm < {"pairs": [[user_id, peer_id], ...], "rooms": {slug: [user_id, ...]}}``
    the reconnect storm's conversations: a direct one per pair, the rooms with their members;
    prints their ids and the newest message and notification ids (where a page's ``after`` starts).
``python -m bench.djtool year < {"user_id": 1, "peer_id": 2, "room_id": 1, "dm_id": 2}``
    on a database from ``bench.yeardata``: sessions for the user and the peer, and the ids the
    cost scenario starts from (pages deep in the past, resume points 100 messages back).
``python -m bench.djtool jobs < {"user_id": 1}``
    on a copy of a year's database: the settle job after the user's mark-all-read, then the
    retention job's prune; rows, seconds, the prune's memory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from importlib import import_module
from typing import Any

Json = dict[str, Any]
USERNAME_PREFIX = "bench"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
    import django

    django.setup()


def resolve_notify() -> Callable[..., Any]:
    """The app's ``notify(recipient, text, ...)`` service."""
    from notifications.services import notify

    return notify


def _sessions(users: list[Any]) -> list[str]:
    """One authenticated session per user, written in bulk when the engine stores rows."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    engine = import_module(settings.SESSION_ENGINE)
    backend = (
        "django.contrib.auth.backends.ModelBackend"
        if "django.contrib.auth.backends.ModelBackend" in settings.AUTHENTICATION_BACKENDS
        else settings.AUTHENTICATION_BACKENDS[0]
    )

    def data(user: Any) -> Json:
        return {SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: backend, HASH_SESSION_KEY: user.get_session_auth_hash()}

    if settings.SESSION_ENGINE in ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"):
        from django.contrib.sessions.models import Session

        store = engine.SessionStore()
        expire = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        keys = [get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789") for _ in users]
        Session.objects.bulk_create(
            [
                Session(session_key=k, session_data=store.encode(data(u)), expire_date=expire)
                for k, u in zip(keys, users, strict=True)
            ],
            batch_size=500,
        )
        return keys
    keys = []
    for user in users:
        store = engine.SessionStore()
        store.update(data(user))
        store.create()
        keys.append(store.session_key)
    return keys


def _room(creator: Any, slug: str) -> str:
    """Create the public bench room through the app's service when it exists."""
    from dm.models import Conversation

    if Conversation.objects.filter(slug=slug).exists():
        return slug
    try:
        from dm.services import room_create
    except ImportError:
        Conversation.objects.create(kind="room", slug=slug, name=slug, created_by=creator)
    else:
        room_create(creator=creator, name=slug, slug=slug, private=False)
    return slug


def _direct(pairs: list[tuple[Any, Any]]) -> None:
    """Pre-create DM conversations so that both sides connecting at once do not race."""
    from dm import services

    create = getattr(services, "direct_conversation_get_or_create", None)
    legacy = getattr(services, "direct_conversation_for", None)
    for a, b in pairs:
        if create is not None:
            create(user_a=a, user_b=b)
        elif legacy is not None:
            legacy(a, b)


def setup(cfg: Json) -> Json:
    """Create (or reuse) bench users, sessions, the room and the DM conversations."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    user_model = get_user_model()
    n = int(cfg["users"])
    names = [f"{USERNAME_PREFIX}{i:05d}" for i in range(n)]
    with transaction.atomic():
        existing = set(user_model.objects.filter(username__in=names).values_list("username", flat=True))
        user_model.objects.bulk_create(
            [
                user_model(username=u, email=f"{u}@bench.invalid", password=make_password(None))
                for u in names
                if u not in existing
            ],
            batch_size=1000,
        )
        by_name = {u.username: u for u in user_model.objects.filter(username__in=names)}
        users = [by_name[u] for u in names]
        keys = _sessions(users)
    room = _room(users[0], cfg.get("room_slug", "bench-room")) if cfg.get("room_slug") else None
    pairs = int(cfg.get("dm_pairs", 0))
    _direct([(users[2 * i], users[2 * i + 1]) for i in range(min(pairs, n // 2))])
    return {
        "users": [{"id": u.pk, "username": u.username, "session": k} for u, k in zip(users, keys, strict=True)],
        "cookie_name": settings.SESSION_COOKIE_NAME,
        "room": room,
    }


def count(cfg: Json) -> Json:
    """Stored messages per body prefix."""
    from django.db.models import Count, Max, Min

    from dm.models import Message

    out: Json = {}
    for prefix in cfg["prefixes"]:
        agg = Message.objects.filter(body__startswith=prefix).aggregate(
            n=Count("id"), first=Min("created_at"), last=Max("created_at")
        )
        out[prefix] = {
            "n": agg["n"],
            "first": agg["first"].isoformat() if agg["first"] else None,
            "last": agg["last"].isoformat() if agg["last"] else None,
        }
    return {"counts": out}


def year(cfg: Json) -> Json:
    """Sessions for the year's subjects and the cursors the cost scenario uses."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from dm.models import Message
    from notifications.models import Notification, ReadMark

    # As generated: read or unread by read_at alone (a reused database keeps the last run's mark).
    ReadMark.objects.filter(user_id=cfg["user_id"]).delete()
    by_id = get_user_model().objects.in_bulk([cfg["user_id"], cfg["peer_id"]])
    user, peer = by_id[cfg["user_id"]], by_id[cfg["peer_id"]]
    keys = _sessions([user, peer])

    def ids(queryset: Any) -> list[int]:
        return list(queryset.values_list("id", flat=True))

    def deep(conversation_id: int) -> list[int]:
        # Pages within the oldest 2% of the conversation: "a year ago".
        oldest = ids(Message.objects.filter(conversation_id=conversation_id).order_by("id"))
        start = max(60, len(oldest) // 100)
        return oldest[start : start + 2 * max(1, len(oldest) // 100) : max(1, len(oldest) // 1000)][:50]

    def resume_point(conversation_id: int, back: int) -> int:
        return ids(Message.objects.filter(conversation_id=conversation_id).order_by("-id")[back : back + 1])[0]

    notes = ids(Notification.objects.filter(recipient_id=user.pk).order_by("id"))
    return {
        "cookie_name": settings.SESSION_COOKIE_NAME,
        "user": {"id": user.pk, "username": user.username, "session": keys[0]},
        "peer": {"id": peer.pk, "username": peer.username, "session": keys[1]},
        "room_slug": "year-room",
        "dm_deep_before": deep(cfg["dm_id"]),
        "room_deep_before": deep(cfg["room_id"]),
        "dm_after_100": resume_point(cfg["dm_id"], 100),
        "room_after_100": resume_point(cfg["room_id"], 100),
        "notifications_deep_before": notes[len(notes) // 100 : len(notes) // 100 + 50],
        "notifications": len(notes),
    }


def storm(cfg: Json) -> Json:
    """Direct conversations for the pairs, rooms and their members, and the ids a page would resume from."""
    from django.contrib.auth import get_user_model
    from django.db.models import Max

    from dm.models import Conversation, Membership
    from dm.services import direct_conversation_get_or_create
    from notifications.models import Notification

    members = {u for users in cfg["rooms"].values() for u in users}
    by_id = get_user_model().objects.in_bulk({u for pair in cfg["pairs"] for u in pair} | members)
    direct = {
        str(user): direct_conversation_get_or_create(user_a=by_id[user], user_b=by_id[peer]).pk
        for user, peer in cfg["pairs"]
    }
    rooms = {}
    for slug, users in cfg["rooms"].items():
        _room(by_id[users[0]], slug)
        room = Conversation.objects.get(slug=slug)
        Membership.objects.bulk_create(
            [Membership(conversation=room, user_id=user) for user in users], ignore_conflicts=True
        )
        rooms[slug] = room.pk
    return {
        "direct": direct,
        "rooms": rooms,
        "newest_notification": Notification.objects.aggregate(newest=Max("id"))["newest"] or 0,
    }


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def jobs(cfg: Json) -> Json:
    """On a copy of a year's database, the background work a year leaves: the job that settles the
    heavy user's mark-all-read (their unread rows get read_at), then the retention job's prune.
    Rows, seconds, and the memory the prune took."""
    from notifications import digests, services

    services.notifications_mark_all_read(user_id=cfg["user_id"])
    t0 = time.monotonic()
    settled = services.notifications_settle_read(user_id=cfg["user_id"])
    settle_seconds = time.monotonic() - t0
    before = _rss_kib()
    t0 = time.monotonic()
    rows = digests.notifications_prune()
    return {
        "settled": settled,
        "settle_seconds": round(settle_seconds, 3),
        "rows": rows,
        "prune_seconds": round(time.monotonic() - t0, 2),
        "rss_before_mib": round(before / 1024, 1),
        # ru_maxrss is the process's high-water mark, in KiB on Linux.
        "rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    """Entry point: ``python -m bench.djtool setup|count|storm|year|jobs`` with a JSON config on stdin."""
    commands = {"setup": setup, "count": count, "storm": storm, "year": year, "jobs": jobs}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit("usage: python -m bench.djtool setup|count|storm|year|jobs < config.json")
    cfg = json.load(sys.stdin)
    t0 = time.monotonic()
    _setup_django()
    result = commands[sys.argv[1]](cfg)
    result["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
