"""manage.py notify and manage.py demo_job."""

import pytest
from django.core.management import CommandError, call_command

from notifications.models import Notification

pytestmark = pytest.mark.django_db


def test_notify_command(alice, capsys, settings):
    settings.REDIS_URL = ""
    call_command("notify", "alice", "Deploy finished", "--url", "/posts/1/")
    notification = Notification.objects.get()
    assert (notification.recipient, notification.kind, notification.text, notification.url) == (
        alice,
        "system",
        "Deploy finished",
        "/posts/1/",
    )
    assert f"notification {notification.pk} stored for alice" in capsys.readouterr().out


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


@pytest.mark.parametrize("command", [["notify", "alice", "hi"], ["demo_job", "alice", "--steps", "1", "--delay", "0"]])
def test_commands_say_plainly_that_without_redis_nothing_is_live(alice, settings, capsys, command):
    settings.REDIS_URL = ""
    call_command(*command)
    out = capsys.readouterr().out
    assert "No REDIS_URL" in out and "no server process can deliver it live" in out
    assert "next page load" in out and "database" in out


def test_commands_say_where_they_publish_with_redis(alice, settings, capsys):
    settings.REDIS_URL = "redis://:secret@redis.example:6380/4"
    call_command("notify", "alice", "hi")
    out = capsys.readouterr().out
    assert "published through Redis redis.example:6380/4" in out and "secret" not in out
    assert "sent to alice" in out
