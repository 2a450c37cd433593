"""Background jobs of the notifications app, on Django's task API (django-tasks, Django 6's
``django.tasks`` backported) and its ORM backend (django-tasks-db).

Workers run ``manage.py jobs_worker`` (README). Two jobs repeat: the digest
sweep every ATTENTION["DIGEST_SWEEP_SECONDS"] and the prune every
ATTENTION["PRUNE_EVERY_SECONDS"]. The task API has no scheduler, so each run
claims its period in ``JobSchedule`` (a conditional UPDATE: one run per
period over every worker) and enqueues the next run in the same
transaction; a run that finds its period claimed does nothing, so duplicate
chains die out. Every worker enqueues a run when a chain is a period overdue
(``ensure_periodic``, at its start and then once a sweep period), which
repairs a chain whose run failed or was killed before it committed its claim.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from notifications import digests, services
from notifications.models import JobSchedule

DIGEST_SWEEP = "digest_sweep"
PRUNE = "notifications_prune"


def _period(name: str) -> timedelta:
    seconds = settings.ATTENTION["DIGEST_SWEEP_SECONDS" if name == DIGEST_SWEEP else "PRUNE_EVERY_SECONDS"]
    return timedelta(seconds=seconds)


def claim_period(name: str) -> bool:
    """Claim the current period of a periodic job and enqueue its next run; False when another run has it."""
    now = timezone.now()
    with transaction.atomic():
        JobSchedule.objects.get_or_create(name=name, defaults={"next_run_at": now})
        next_run = now + _period(name)
        if not JobSchedule.objects.filter(name=name, next_run_at__lte=now).update(next_run_at=next_run):
            return False
        PERIODIC[name].using(run_after=next_run).enqueue()
    return True


def ensure_periodic() -> list[str]:
    """Enqueue a run of each periodic job whose chain is overdue (or never started); their names."""
    now = timezone.now()
    started = []
    for name, job in PERIODIC.items():
        row = JobSchedule.objects.filter(name=name).first()
        if row is None or row.next_run_at < now - _period(name):
            job.enqueue()
            started.append(name)
    return started


@task()
def digest_sweep() -> int:
    """Compose the digests that are due (each is then sent by its own ``send_digest`` job)."""
    if not claim_period(DIGEST_SWEEP):
        return 0
    return len(digests.digests_compose_due())


@task()
def send_digest(digest_id: int) -> bool:
    """Send one stored digest, at most once (``digests.digest_send``)."""
    return digests.digest_send(digest_id=digest_id)


@task()
def notifications_prune() -> int:
    """Delete read and superseded notifications past their retention (first settling any mark-all-read
    left unsettled)."""
    if not claim_period(PRUNE):
        return 0
    services.notifications_settle_all_read()
    return digests.notifications_prune()


@task()
def settle_read(user_id: int) -> int:
    """Give the rows a mark-all-read covered their ``read_at`` (``services.notifications_settle_read``)."""
    return services.notifications_settle_read(user_id=user_id)


PERIODIC = {DIGEST_SWEEP: digest_sweep, PRUNE: notifications_prune}
