"""End to end: two real job workers email digests through a real SMTP server; one is SIGKILLed mid-batch.

Every item must arrive exactly once: the killed worker's digest was already
received by the server when it died (the server held its answer), is never
sent again, and every other digest is sent by the surviving worker.
"""

from __future__ import annotations

import os
import re
import signal
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from dm import services as dm_services
from dm.models import Message
from notifications import selectors
from notifications.models import Digest, Notification
from notifications.services import notify
from tests.support.server import database_url
from tests.support.smtp import SMTPServer
from tests.support.waiting import wait_until
from tests.support.workers import JobWorker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

USERS = 6
STALLED = "user2@example.com"


@pytest.fixture
def away(make_user):
    """Six users, each with two notifications and a direct message unread for 20 minutes."""
    sender = make_user("sender")
    users = [make_user(f"user{n}") for n in range(USERS)]
    items: dict[str, list[str]] = {}
    for user in users:
        markers = [f"item-{user.username}-{n}" for n in range(2)]
        for marker in markers:
            notify(user, f"Report {marker} is ready", url=f"/reports/{user.pk}/")
        conversation = dm_services.direct_conversation_get_or_create(user_a=sender, user_b=user)
        dm_marker = f"dm-{user.username}"
        dm_services.message_send(sender=sender, conversation=conversation, body=f"hello {dm_marker}", client_id=None)
        items[user.email] = [*markers, dm_marker]
    twenty_minutes_ago = timezone.now() - timedelta(minutes=20)
    Notification.objects.update(created_at=twenty_minutes_ago)
    Message.objects.update(created_at=twenty_minutes_ago)
    return users, items


def send_jobs():
    return DBTaskResult.objects.filter(task_path="notifications.tasks.send_digest")


def test_two_workers_one_killed_mid_send_deliver_every_item_exactly_once(away):
    users, items = away
    database = database_url(connection.settings_dict)
    with SMTPServer(stall_for=STALLED) as smtp:
        env = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp.port),
            "DIGEST_SWEEP_SECONDS": "1",
        }
        workers = [JobWorker(database=database, name=f"email-{n}", extra_env=env).start() for n in range(2)]
        try:
            # The server holds its answer to the stalled user's digest: that worker is mid-send.
            wait_until(smtp.handler.stalled.is_set, 60, "the stalled digest reaching the SMTP server")
            stalled = wait_until(
                lambda: Digest.objects.filter(to=STALLED, claimed_at__isnull=False).first(), 10, "its claim"
            )
            pid = int(stalled.claimed_by.rsplit(":", 1)[1])
            killed = next(worker for worker in workers if worker.pid == pid)
            os.kill(pid, signal.SIGKILL)
            killed.process.wait(10)
            smtp.handler.release.set()
            survivor = next(worker for worker in workers if worker is not killed)
            others = [user.email for user in users if user.email != STALLED]
            wait_until(lambda: all(smtp.handler.to(address) for address in others), 60, "every other digest")
            # Idle: every send job but the killed one finished, and a later sweep found nothing new.
            swept_after = timezone.now()
            wait_until(
                lambda: send_jobs().filter(status="SUCCESSFUL").count() == USERS - 1, 30, "the send jobs finishing"
            )
            wait_until(
                lambda: DBTaskResult.objects.filter(
                    task_path="notifications.tasks.digest_sweep", status="SUCCESSFUL", finished_at__gt=swept_after
                ).exists(),
                30,
                "a sweep after the kill",
            )
            assert survivor.alive()
        finally:
            for worker in workers:
                worker.stop()

        received = smtp.handler.all()
        texts = [item.part("text/plain") for item in received]
        for address, markers in items.items():
            mine = [text for item, text in zip(received, texts, strict=True) if address in item.recipients]
            assert len(mine) == 1, address  # one digest per user
            for marker in markers:
                assert sum(text.count(marker) for text in texts) == 1, marker
        # The interrupted digest stays claimed and unsent; nothing sends it again.
        stalled.refresh_from_db()
        assert stalled.sent_at is None and stalled.claimed_by.endswith(f":{pid}")
        assert Digest.objects.filter(sent_at__isnull=False).count() == USERS - 1

        # Every email is plain text and HTML, with the RFC 8058 headers; its link works without a login.
        first = next(item for item in received if STALLED not in item.recipients)
        assert first.part("text/html").startswith("<!doctype html>")
        assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        header = re.sub(r"\s+", "", first.message["List-Unsubscribe"])  # unfolded
        link = re.fullmatch(r"<(https?://[^>]+)>", header).group(1)
        path = re.sub(r"^https?://[^/]+", "", link)
        response = Client(enforce_csrf_checks=True).post(
            path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200
        owner = next(user for user in users if user.email in first.recipients)
        email = selectors.preferences_of(user_id=owner.pk)["email"]
        assert email["system"] is False and email["direct"] is False
