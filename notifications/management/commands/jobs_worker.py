"""``manage.py jobs_worker``: a background-job worker (django-tasks-db's ``db_worker``) that first
starts the periodic jobs' chains when they are overdue.

Run as many as you like, on as many machines as share the database: each job
row is claimed by one worker (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL), and digests are sent at most once whatever the workers do
(notifications/digests.py). Every ``db_worker`` option applies
(``--interval``, ``--queue-name``, ``--max-tasks``, ``--no-reload``, ...).
"""

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from notifications.tasks import ensure_periodic

log = logging.getLogger(__name__)


def watch_periodic_jobs() -> None:
    """Once a sweep period, restart a periodic chain that died (``ensure_periodic``)."""
    while True:
        time.sleep(settings.ATTENTION["DIGEST_SWEEP_SECONDS"])
        try:
            ensure_periodic()
        except Exception:
            log.warning("checking the periodic jobs failed; trying again next period", exc_info=True)
        finally:
            close_old_connections()


class Command(DatabaseWorkerCommand):
    help = "Run a background-job worker; starts the digest sweep and the prune when they are overdue."

    def handle(self, **options: Any) -> None:
        started = ensure_periodic()
        if started and options.get("verbosity", 1) > 0:
            self.stdout.write(f"started periodic jobs: {', '.join(started)}")
        # A daemon thread: it only enqueues, and it dies with the worker.
        threading.Thread(target=watch_periodic_jobs, name="periodic-jobs", daemon=True).start()
        super().handle(**options)
