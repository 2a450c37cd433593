"""Email digests without a worker: what is due, one email per window, at most once, unsubscribing, pruning."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from dm import changes
from dm import services as dm_services
from notifications import digests, selectors, tasks
from notifications.models import Digest, JobSchedule, Notification
from notifications.services import notifications_mark_all_read, notifications_mark_read, notify, preferences_update
from social.models import Post
from social.realtime import protocol
from social.services import comment_create
from tests.conftest import needs_postgres

pytestmark = pytest.mark.django_db

LATER = timedelta(minutes=11)  # past the default 10-minute delay


def compose_and_send(user, at):
    digest = digests.digest_compose(user_id=user.pk, now=timezone.now() + at)
    if digest is not None:
        assert digests.digest_send(digest_id=digest.pk, worker="test")
    return digest


def links(text):
    return re.findall(r"https?://\S+", text)


def test_nothing_is_emailed_before_the_delay(alice, mailoutbox):
    notify(alice, "Backup finished", url="/backups/")
    assert compose_and_send(alice, timedelta(minutes=9)) is None
    assert compose_and_send(alice, LATER) is not None
    assert len(mailoutbox) == 1


def test_one_email_with_every_due_item_a_link_each_text_and_html(alice, bob, carol, post, mailoutbox):
    comment_create(author=bob, post=post, body="nice")
    notify(alice, "Maintenance tonight", url="/status/")
    pair = dm_services.direct_conversation_get_or_create(user_a=alice, user_b=carol)
    message = dm_services.message_send(sender=carol, conversation=pair, body="are you there?", client_id=None).message
    compose_and_send(alice, LATER)
    (email,) = mailoutbox
    assert email.to == ["alice@example.com"]
    assert email.subject == "3 unread items waiting for you"
    text = email.body
    assert "bob commented on your post “Hello”" in text
    assert "Maintenance tonight" in text
    assert "carol: are you there?" in text
    assert "http://127.0.0.1:8000/status/" in links(text)
    assert f"http://127.0.0.1:8000/messages/carol/#message-{message.pk}" in links(text)
    assert any(link.startswith(f"http://127.0.0.1:8000/posts/{post.pk}/#comment-") for link in links(text))
    (html, mimetype) = email.alternatives[0]
    assert mimetype == "text/html"
    assert 'href="http://127.0.0.1:8000/status/"' in html
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = email.extra_headers["List-Unsubscribe"]
    assert re.fullmatch(r"<http://127\.0\.0\.1:8000/email/unsubscribe/[^/>]+/>", header)
    # One unsubscribe link per kind in the email.
    assert len([link for link in links(text) if "/email/unsubscribe/" in link]) == 3


def test_html_escapes_user_text(alice, bob, mailoutbox):
    post = Post.objects.create(author=alice, title="<script>x</script>", body="b")
    comment_create(author=bob, post=post, body="hi")
    compose_and_send(alice, LATER)
    html = mailoutbox[0].alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_at_most_one_email_per_window_and_each_item_once(alice, mailoutbox):
    first = notify(alice, "first")
    compose_and_send(alice, LATER)
    notify(alice, "second")
    # Within the same window (10 minutes after the first email): nothing.
    assert compose_and_send(alice, LATER + timedelta(minutes=5)) is None
    later = compose_and_send(alice, LATER + timedelta(minutes=25))
    assert later is not None and later.items == 1
    assert "second" in mailoutbox[1].body and "first" not in mailoutbox[1].body
    assert Notification.objects.get(pk=first.pk).emailed_at is not None
    assert compose_and_send(alice, LATER + timedelta(minutes=60)) is None
    assert len(mailoutbox) == 2


def test_read_items_kinds_turned_off_and_email_off_are_not_emailed(alice, bob, post, mailoutbox):
    read = notify(alice, "already seen")
    notifications_mark_read(user_id=alice.pk, ids=[read.pk])
    preferences_update(user_id=alice.pk, fields={"email_comment": False})
    comment_create(author=bob, post=post, body="a comment")
    assert compose_and_send(alice, LATER) is None
    notify(alice, "system one")
    preferences_update(user_id=alice.pk, fields={"email_delay_minutes": 0})
    assert compose_and_send(alice, timedelta(days=1)) is None
    assert mailoutbox == []


def test_direct_messages_follow_the_read_marker_mute_and_kind(alice, bob, carol, mailoutbox):
    with_bob = dm_services.direct_conversation_get_or_create(user_a=alice, user_b=bob)
    with_carol = dm_services.direct_conversation_get_or_create(user_a=alice, user_b=carol)
    seen = dm_services.message_send(sender=bob, conversation=with_bob, body="seen", client_id=None).message
    dm_services.read_mark(user=alice, conversation=with_bob, message_id=seen.pk)
    dm_services.message_send(sender=bob, conversation=with_bob, body="unseen", client_id=None)
    dm_services.conversation_mute_set(user=alice, conversation=with_carol, muted=True)
    dm_services.message_send(sender=carol, conversation=with_carol, body="muted", client_id=None)
    dm_services.message_send(sender=alice, conversation=with_bob, body="my own", client_id=None)
    compose_and_send(alice, LATER)
    (email,) = mailoutbox
    assert "bob: unseen" in email.body
    assert "seen\n" not in email.body.replace("unseen", "")
    assert "muted" not in email.body and "my own" not in email.body


def test_room_messages_are_not_emailed(alice, bob, mailoutbox):
    room = dm_services.room_create(creator=bob, name="General", slug="general", private=False)
    dm_services.room_join(user=alice, conversation=room)
    dm_services.message_send(sender=bob, conversation=room, body="hello room", client_id=None)
    assert compose_and_send(alice, LATER) is None


def test_users_without_an_email_address_get_none(bob, mailoutbox):
    bob.email = ""
    bob.save()
    notify(bob, "for bob")
    assert compose_and_send(bob, LATER) is None


def test_a_digest_is_sent_at_most_once(alice, mailoutbox):
    notify(alice, "once")
    digest = digests.digest_compose(user_id=alice.pk, now=timezone.now() + LATER)
    assert digests.digest_send(digest_id=digest.pk, worker="one") is True
    assert digests.digest_send(digest_id=digest.pk, worker="two") is False
    assert len(mailoutbox) == 1
    stored = Digest.objects.get(pk=digest.pk)
    assert stored.claimed_by == "one" and stored.sent_at is not None


def test_composing_enqueues_the_send_job_and_the_sweep_composes_for_everyone(alice, make_user, mailoutbox):
    other = make_user("olga")
    notify(alice, "a")
    notify(other, "b")
    composed = digests.digests_compose_due(now=timezone.now() + LATER)
    assert len(composed) == 2
    jobs = DBTaskResult.objects.filter(task_path="notifications.tasks.send_digest")
    assert sorted(job.args_kwargs["args"][0] for job in jobs) == sorted(composed)
    assert digests.digests_compose_due(now=timezone.now() + LATER) == []


def test_an_unsent_digest_whose_job_was_lost_is_enqueued_again(alice):
    notify(alice, "a")
    digest = digests.digest_compose(user_id=alice.pk, now=timezone.now() + LATER)
    DBTaskResult.objects.all().delete()
    digests.digests_compose_due(now=timezone.now() + LATER + digests.ORPHAN_AFTER + timedelta(minutes=1))
    assert [job.args_kwargs["args"] for job in DBTaskResult.objects.all()] == [[digest.pk]]


def test_the_unsubscribe_link_works_without_logging_in(alice, bob, post, mailoutbox):
    comment_create(author=bob, post=post, body="a comment")
    notify(alice, "system")
    compose_and_send(alice, LATER)
    body = mailoutbox[0].body
    comment_link = re.search(r"Stop emails about comments on your posts: (\S+)", body).group(1)
    path = comment_link.removeprefix("http://127.0.0.1:8000")
    anonymous = Client(enforce_csrf_checks=True)
    asked = anonymous.get(path)
    assert asked.status_code == 200 and "Stop emailing alice about comments on your posts?" in asked.content.decode()
    assert selectors.preferences_of(user_id=alice.pk)["email"]["comment"] is True  # GET changes nothing
    done = anonymous.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    email = selectors.preferences_of(user_id=alice.pk)["email"]
    assert (email["comment"], email["system"]) == (False, True)
    # The header's link turns off every kind the digest had.
    header = mailoutbox[0].extra_headers["List-Unsubscribe"].strip("<>").removeprefix("http://127.0.0.1:8000")
    assert anonymous.post(header, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert selectors.preferences_of(user_id=alice.pk)["email"]["system"] is False


@pytest.mark.parametrize("token", ["nonsense", digests.signing.dumps({"u": 1, "k": ["comment"]}, salt="other")])
def test_a_forged_unsubscribe_token_is_refused(alice, token):
    for method in ("get", "post"):
        response = getattr(Client(), method)(f"/email/unsubscribe/{token}/")
        assert response.status_code == 400
    assert selectors.preferences_of(user_id=alice.pk)["email"]["comment"] is True


def test_prune_removes_old_read_notifications_with_what_they_superseded(alice, bob, carol, post):
    comment_create(author=bob, post=post, body="one")
    comment_create(author=carol, post=post, body="two")
    (group,) = selectors.notifications_of(user_id=alice.pk)
    old_unread = notify(alice, "old but unread")
    recent_read = notify(alice, "recent and read")
    notifications_mark_read(user_id=alice.pk, ids=[group.pk, recent_read.pk])
    long_ago = timezone.now() - timedelta(days=91)
    Notification.objects.exclude(pk=recent_read.pk).update(created_at=long_ago)
    assert digests.notifications_prune() == 2  # the group and the row it superseded
    assert sorted(Notification.objects.values_list("pk", flat=True)) == [old_unread.pk, recent_read.pk]


def test_prune_goes_in_batches_and_stops_at_the_cutoff(alice, bob, carol, post, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(digests, "PRUNE_BATCH", 2)
    comment_create(author=bob, post=post, body="one")
    comment_create(author=carol, post=post, body="two")  # a group superseding the first
    old_read = [notify(alice, f"old {n}") for n in range(5)]
    old_unread = notify(alice, "old but unread")
    recent = [notify(alice, f"recent {n}") for n in range(10)]
    (group,) = [row for row in selectors.notifications_of(user_id=alice.pk) if row.count == 2]
    notifications_mark_read(user_id=alice.pk, ids=[group.pk, *(row.pk for row in old_read + recent)])
    Notification.objects.filter(pk__lt=recent[0].pk).update(created_at=timezone.now() - timedelta(days=91))
    with CaptureQueriesContext(connection) as queries:
        assert digests.notifications_prune() == 7  # 5 old, the group and the row it superseded
    assert sorted(Notification.objects.values_list("pk", flat=True)) == [old_unread.pk, *(row.pk for row in recent)]
    walks = [q for q in queries if q["sql"].endswith("LIMIT 2")]
    assert len(walks) == 5  # 8 old rows two at a time, then one batch reaches the recent ones: the walk ends


def test_prune_deletes_a_long_group_chain_without_recursing_down_it(alice, monkeypatch):
    """A busy post's group: each event superseded the one before, 600 deep, and the newest was read."""
    monkeypatch.setattr(digests, "PRUNE_BATCH", 50)
    Notification.objects.bulk_create(Notification(recipient=alice, text=f"e{n}", group_key="k") for n in range(601))
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    for older, newer in zip(ids, ids[1:], strict=False):
        Notification.objects.filter(pk=older).update(superseded_by_id=newer)
    Notification.objects.update(created_at=timezone.now() - timedelta(days=91))
    Notification.objects.filter(pk=ids[-1]).update(read_at=timezone.now())
    assert digests.notifications_prune() == 601
    assert not Notification.objects.exists()


def test_prune_takes_old_rows_read_by_a_mark_whose_job_never_settled_them(alice):
    old = [notify(alice, f"old {n}") for n in range(3)]
    assert notifications_mark_all_read(user_id=alice.pk).changed
    unread_old = notify(alice, "old, after the mark")
    Notification.objects.update(created_at=timezone.now() - timedelta(days=91))
    assert Notification.objects.filter(pk__in=[row.pk for row in old], read_at=None).count() == 3
    assert digests.notifications_prune() == 3
    assert list(Notification.objects.values_list("pk", flat=True)) == [unread_old.pk]


@needs_postgres
def test_prune_deletes_more_rows_than_one_statement_can_name(alice):
    """A year's worth due at once: one delete() sent every id as a parameter, past PostgreSQL's 65,535."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Notification._meta.db_table} (recipient_id, kind, text, url, created_at, read_at,"
            " group_key, count, actors, replaces) SELECT %s, 'system', 'old', '', now() - interval '100 days',"
            " now() - interval '99 days', '', 1, '[]', '[]' FROM generate_series(1, 70000)",
            [alice.pk],
        )
    kept = notify(alice, "recent")
    assert digests.notifications_prune() == 70000
    assert list(Notification.objects.values_list("pk", flat=True)) == [kept.pk]


def test_a_periodic_job_runs_once_per_period_and_restarts_when_overdue(settings):
    assert tasks.ensure_periodic() == [tasks.DIGEST_SWEEP, tasks.PRUNE]
    assert tasks.claim_period(tasks.DIGEST_SWEEP) is True
    assert tasks.claim_period(tasks.DIGEST_SWEEP) is False  # another run has this period
    assert tasks.ensure_periodic() == [tasks.PRUNE]  # the sweep's chain is fine
    next_runs = DBTaskResult.objects.filter(task_path="notifications.tasks.digest_sweep").exclude(
        run_after__isnull=True
    )
    assert next_runs.count() >= 1
    # A run that failed before it claimed its period leaves the chain a period overdue: restarted.
    period = timedelta(seconds=settings.ATTENTION["DIGEST_SWEEP_SECONDS"])
    JobSchedule.objects.filter(name=tasks.DIGEST_SWEEP).update(next_run_at=timezone.now() - period * 1.5)
    assert tasks.DIGEST_SWEEP in tasks.ensure_periodic()


def test_an_unreachable_mail_server_gives_the_claim_back_for_a_retry(alice, settings, mailoutbox):
    from tests.support.server import free_port

    notify(alice, "retry me")
    digest = digests.digest_compose(user_id=alice.pk, now=timezone.now() + LATER)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    with pytest.raises(OSError):
        digests.digest_send(digest_id=digest.pk, worker="one")
    assert Digest.objects.get(pk=digest.pk).claimed_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert digests.digest_send(digest_id=digest.pk, worker="two") is True
    assert [email.subject for email in mailoutbox] == ["1 unread item waiting for you"]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_user_another_worker_is_composing_for_is_skipped(alice):
    import threading

    from django.db import connections, transaction

    from notifications.models import Preferences

    notify(alice, "contended")
    Preferences.objects.create(user=alice)
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            list(Preferences.objects.select_for_update().filter(user=alice))
            locked.set()
            release.wait(30)
        connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(30)
        assert digests.digest_compose(user_id=alice.pk, now=timezone.now() + LATER) is None
    finally:
        release.set()
        thread.join(30)
    assert digests.digest_compose(user_id=alice.pk, now=timezone.now() + LATER) is not None


def test_a_group_is_due_a_delay_after_its_first_event_not_its_latest(alice, bob, carol, post, mailoutbox):
    comment_create(author=bob, post=post, body="first")
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=8))
    # A second comment 8 minutes later groups the first: the email is still due at 10 minutes after the first.
    comment_create(author=carol, post=post, body="second")
    digest = compose_and_send(alice, timedelta(minutes=3))
    assert digest is not None and "carol and bob commented" in mailoutbox[0].body


def test_events_already_emailed_are_not_emailed_again_through_a_group(alice, bob, carol, post, mailoutbox):
    comment_create(author=bob, post=post, body="first")
    compose_and_send(alice, LATER)
    comment_create(author=carol, post=post, body="second")
    compose_and_send(alice, LATER + timedelta(minutes=30))
    assert len(mailoutbox) == 2
    assert "bob" not in mailoutbox[1].body and "carol commented" in mailoutbox[1].body


def test_a_deleted_direct_message_is_not_emailed(alice, carol, mailoutbox):
    pair = dm_services.direct_conversation_get_or_create(user_a=alice, user_b=carol)
    sent = dm_services.message_send(sender=carol, conversation=pair, body="oops", client_id=None).message
    changes.message_change(user=carol, conversation=pair, change=protocol.Change("delete", sent.pk))
    assert compose_and_send(alice, LATER) is None
    assert mailoutbox == []


def test_one_users_failure_does_not_stop_the_sweep_for_the_others(alice, bob, monkeypatch, mailoutbox):
    notify(alice, "for alice")
    notify(bob, "for bob")
    compose = digests.digest_compose

    def failing_for_alice(*, user_id, now):
        if user_id == alice.pk:
            raise RuntimeError("a template failed")
        return compose(user_id=user_id, now=now)

    monkeypatch.setattr(digests, "digest_compose", failing_for_alice)
    composed = digests.digests_compose_due(now=timezone.now() + LATER)
    assert [Digest.objects.get(pk=pk).user_id for pk in composed] == [bob.pk]
