"""The admin: "Add notification" sends a system notification through notify()."""

import re

import pytest
from django.test import Client

from notifications.models import Notification
from notifications.selectors import unread
from notifications.services import notifications_mark_all_read, notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(make_user):
    root = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    return client, root


def test_add_sends_a_live_system_notification(admin_client_, alice, pushes, django_capture_on_commit_callbacks):
    client, root = admin_client_
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/notifications/notification/add/", {"recipient": alice.pk, "text": "Maintenance at 22:00", "url": ""}
        )
    assert response.status_code == 302
    notification = Notification.objects.get()
    assert (notification.kind, notification.actor, notification.text) == ("system", root, "Maintenance at 22:00")
    assert pushes.to(alice)[0]["notification"]["id"] == notification.pk


def test_add_refuses_a_script_url(admin_client_, alice):
    client, _ = admin_client_
    response = client.post(
        "/admin/notifications/notification/add/", {"recipient": alice.pk, "text": "x", "url": "javascript:alert(1)"}
    )
    assert response.status_code == 200 and "url must be" in response.content.decode()
    assert not Notification.objects.exists()


def test_mark_read_action(admin_client_, alice, bob):
    client, _ = admin_client_
    ids = [notify(alice, "a").pk, notify(bob, "b").pk]
    response = client.post(
        "/admin/notifications/notification/", {"action": "mark_read", "_selected_action": ids, "index": 0}
    )
    assert response.status_code == 302
    assert not unread().exists()


def test_admin_pages_render(admin_client_, alice):
    client, _ = admin_client_
    notification = notify(alice, "a")
    for path in ["", "add/", f"{notification.pk}/change/", "?read=no", "?read=yes"]:
        assert client.get(f"/admin/notifications/notification/{path}").status_code == 200


def test_the_read_column_and_filter_follow_a_mark_all_read_before_its_job(admin_client_, alice, bob):
    client, _ = admin_client_
    marked = notify(alice, "marked")
    assert notifications_mark_all_read(user_id=alice.pk).changed
    unread_one = notify(bob, "unread one")

    def listed(query):
        page = client.get(f"/admin/notifications/notification/{query}").content.decode()
        rows = {pk for pk in (marked.pk, unread_one.pk) if f"/admin/notifications/notification/{pk}/change/" in page}
        return rows, len(re.findall(r'class="field-read"><img src="[^"]*icon-yes[^"]*"', page))

    assert Notification.objects.get(pk=marked.pk).read_at is None  # the job has not run
    assert listed("?read=yes") == ({marked.pk}, 1)
    assert listed("?read=no") == ({unread_one.pk}, 0)
    assert listed("") == ({marked.pk, unread_one.pk}, 1)


def test_digests_are_listed_read_only_and_an_interrupted_one_shows(admin_client_, alice):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.digests import digest_compose
    from notifications.models import Digest

    client, _ = admin_client_
    notify(alice, "while away")
    digest = digest_compose(user_id=alice.pk, now=timezone.now() + timedelta(minutes=11))
    Digest.objects.filter(pk=digest.pk).update(claimed_at=timezone.now(), claimed_by="host:123")
    listed = client.get("/admin/notifications/digest/?sent_at__isnull=True")
    assert listed.status_code == 200 and "host:123" in listed.content.decode()
    assert client.get("/admin/notifications/digest/add/").status_code == 403
    assert client.post(f"/admin/notifications/digest/{digest.pk}/change/", {"to": "x@example.com"}).status_code == 403
    assert Digest.objects.get(pk=digest.pk).to == "alice@example.com"


def test_grouping_fields_of_a_notification_are_read_only(admin_client_, alice):
    client, _ = admin_client_
    notification = notify(alice, "hello")
    page = client.get(f"/admin/notifications/notification/{notification.pk}/change/").content.decode()
    assert 'name="replaces"' not in page and 'name="superseded_by"' not in page
