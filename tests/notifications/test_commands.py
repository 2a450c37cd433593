"""manage.py notify and manage.py demo_job."""

import pytest
from django.core.management import CommandError, call_command

from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_notify_command(alice, capsys):
    call_command("notify", "alice", "Deploy finished", "--url", "/posts/1/")
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.text, notification.url) == (
        alice,
        "system",
        "Deploy finished",
        "/posts/1/",
    )
    assert f"notification {notification.pk} sent to alice" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nobody", "hi"], "no user named"), (["alice", "hi", "--url", "javascript:x"], "url must be")],
)
def test_notify_command_errors(alice, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("notify", *args)
    assert not Notification.objects.exists()


def test_demo_job_reports_progress(alice):
    call_command("demo_job", "alice", "--steps", "3", "--delay", "0")
    assert list(Notification.objects.order_by("id").values_list("text", flat=True)) == [
        "Demo job started: 3 steps",
        "Demo job: step 1 of 3 done",
        "Demo job: step 2 of 3 done",
        "Demo job: step 3 of 3 done",
        "Demo job finished",
    ]


def test_demo_job_refuses_bad_arguments(alice):
    with pytest.raises(CommandError):
        call_command("demo_job", "alice", "--steps", "0")
