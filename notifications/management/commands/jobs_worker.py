"""``manage.py jobs_worker``: a background-job worker (django-tasks-db's ``db_worker``) that first
starts the periodic jobs' chains when they are overdue.

Run as many as you like, on as many machines as share the database: each job
row is claimed by one worker (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL), and digests are sent at most once whatever the workers do
(notifications/digests.py). Every ``db_worker`` option applies
(``--interval``, ``--queue-name``, ``--max-tasks``, ``--no-reload``, ...).
"""

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from notifications.tasks import ensure_periodic


class Command(DatabaseWorkerCommand):
    help = "Run a background-job worker; starts the digest sweep and the prune when they are overdue."

    def handle(self, **options: Any) -> None:
        started = ensure_periodic()
        if started and options.get("verbosity", 1) > 0:
            self.stdout.write(f"started periodic jobs: {', '.join(started)}")
        super().handle(**options)
