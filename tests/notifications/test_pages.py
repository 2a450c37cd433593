"""The /notifications/ page, its forms, and the bell on every page."""

import re

import pytest
from django.test import Client

from notifications.models import Notification
from notifications.selectors import unread
from notifications.services import notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_client(alice):
    client = Client()
    client.force_login(alice)
    return client


def test_page_needs_login(client):
    response = client.get("/notifications/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_page_lists_newest_first_with_pagination(page_client, alice):
    ids = [notify(alice, f"note {i}").pk for i in range(25)]
    first = page_client.get("/notifications/").content.decode()
    shown = [int(value) for value in re.findall(r'class="card notification-row[^"]*" data-id="(\d+)"', first)]
    assert shown == ids[:4:-1]
    assert "?page=2" in first and "25 unread" in first
    second = page_client.get("/notifications/?page=2").content.decode()
    assert "note 4" in second and "note 5" not in second


def test_user_text_is_escaped(page_client, alice):
    notify(alice, "<script>alert(1)</script>")
    page = page_client.get("/notifications/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_mark_one_read_redirects_back_and_pushes(page_client, alice, bob, pushes, django_capture_on_commit_callbacks):
    mine = notify(alice, "mine")
    theirs = notify(bob, "theirs")
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client.post("/notifications/read/", {"id": mine.pk, "next": "/notifications/?page=1"})
    assert response.status_code == 302 and response["Location"] == "/notifications/?page=1"
    assert pushes.to(alice) == [{"type": "unread", "unread": 0, "ids": [mine.pk]}]
    page_client.post("/notifications/read/", {"id": theirs.pk})
    assert unread().filter(pk=theirs.pk).exists()


def test_mark_all_read_and_foreign_next_is_ignored(page_client, alice):
    notify(alice, "a")
    notify(alice, "b")
    response = page_client.post("/notifications/read/", {"all": "1", "next": "https://evil.example/"})
    assert response["Location"] == "/notifications/"
    assert not unread().exists()


@pytest.mark.parametrize("data", [{}, {"id": "x"}, {"id": "0"}, {"id": "9" * 30}])
def test_mark_read_form_garbage_is_400(page_client, data):
    assert page_client.post("/notifications/read/", data).status_code == 400


def test_mark_read_form_needs_post(page_client):
    assert page_client.get("/notifications/read/").status_code == 405


def test_bell_is_on_every_logged_in_page(page_client, alice):
    first = notify(alice, "one")
    last = notify(alice, "two")
    Notification.objects.filter(pk=first.pk).update(read_at="2026-01-01T00:00:00Z")
    for path in ["/", "/notifications/"]:
        page = page_client.get(path).content.decode()
        for element_id in ["bell-button", "bell-badge", "bell-dropdown", "bell-mark-all", "bell-live"]:
            assert f'id="{element_id}"' in page
        assert re.search(r'id="bell-badge" class="badge" data-count="1">1</span>', page)
        assert f'data-last-id="{last.pk}"' in page
        assert 'aria-expanded="false"' in page
        assert "<script>" not in page and " style=" not in page


def test_badge_hidden_when_nothing_unread(page_client):
    page = page_client.get("/").content.decode()
    assert 'id="bell-badge" class="badge" data-count="0" hidden>0</span>' in page


def test_bell_script_never_uses_inner_html():
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "static/js/bell.js").read_text()
    assert "innerHTML" not in source.split("*/", 1)[1]
    for element_id in ["#bell-button", "#bell-badge", "#bell-dropdown", "#bell-mark-all", ".notification-item"]:
        assert element_id in source.split("*/", 1)[0]
