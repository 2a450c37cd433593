"""``manage.py demo_job <username>``: a long-running job that reports progress as notifications.

The job runs in its own process (or a worker, a Celery task, a cron job), never
inside a server: no request waits for it and no event loop sleeps. Each step
calls notify(); with a shared Redis channel layer the user's open tabs see the
progress live, and in any case the rows are there on their next resume (the
command says which before it starts).
"""

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.management.commands._delivery import delivery_note
from notifications.services import notify


class Command(BaseCommand):
    help = "Run a pretend long job for a user, notifying them of its progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--steps", type=int, default=5, help="how many steps (default 5)")
        parser.add_argument("--delay", type=float, default=2.0, help="seconds of pretend work per step (default 2)")

    def handle(self, *args: Any, username: str, steps: int, delay: float, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not 1 <= steps <= 100 or delay < 0:
            raise CommandError("steps must be 1..100 and delay not negative")
        live, note = delivery_note()
        self.stdout.write(note if live else self.style.WARNING(note))
        notify(user, f"Demo job started: {steps} steps")
        for step in range(1, steps + 1):
            time.sleep(delay)  # the job's work; this process is nobody's server
            notify(user, f"Demo job: step {step} of {steps} done")
            self.stdout.write(f"step {step}/{steps}")
        notify(user, "Demo job finished", url="/notifications/")
        self.stdout.write("done")
