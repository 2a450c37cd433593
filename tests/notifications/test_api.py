"""GET /api/notifications/ and POST /api/notifications/read/."""

import json

import pytest
from django.test import Client

from notifications.models import Notification
from notifications.selectors import unread
from notifications.services import notify

pytestmark = pytest.mark.django_db

LIST = "/api/notifications/"
READ = "/api/notifications/read/"


@pytest.fixture
def api(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def ids(alice, bob):
    notify(bob, "bob's own")
    return [notify(alice, f"n{i}", actor=bob, kind="comment", url=f"/posts/{i}/").pk for i in range(5)]


def post_json(client, body):
    return client.post(
        READ, body if isinstance(body, (str, bytes)) else json.dumps(body), content_type="application/json"
    )


def test_list_newest_first_with_paging(api, ids, bob):
    data = api.get(LIST, {"limit": 2}).json()
    assert [item["id"] for item in data["results"]] == [ids[4], ids[3]]
    assert data["unread"] == 5 and data["has_more"] is True
    first = data["results"][0]
    assert first["actor"] == {"id": bob.pk, "username": "bob"}
    assert (first["kind"], first["text"], first["url"], first["read"]) == ("comment", "n4", "/posts/4/", False)
    data = api.get(LIST, {"before": ids[3], "limit": 100}).json()
    assert [item["id"] for item in data["results"]] == ids[2::-1] and data["has_more"] is False


def test_list_default_page(api, ids):
    data = api.get(LIST).json()
    assert len(data["results"]) == 5 and data["has_more"] is False


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"limit": "１"},
        {"before": "x"},
        {"before": "-5"},
        {"before": "1.5"},
        {"before": "9" * 30},
    ],
)
def test_list_bad_parameters_are_400(api, query):
    response = api.get(LIST, query)
    assert response.status_code == 400
    assert response.json()["error"]


def test_anonymous_gets_401_json_not_a_redirect():
    assert Client().get(LIST).status_code == 401
    assert Client().get(LIST).json() == {"error": "not logged in"}
    response = Client().post(READ, "{}", content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), [("post", LIST), ("put", LIST), ("get", READ), ("delete", READ)])
def test_wrong_method_is_405(api, method, path):
    response = getattr(api, method)(path)
    assert response.status_code == 405
    assert "error" in response.json()


def test_mark_some_read(api, ids, bob):
    response = post_json(api, {"ids": [ids[0], ids[1]]})
    assert response.status_code == 200 and response.json() == {"unread": 3}
    assert api.get(LIST, {"limit": 5}).json()["results"][-1]["read"] is True


def test_mark_all_read(api, ids, bob):
    assert post_json(api, {"all": True}).json() == {"unread": 0}
    assert unread(user_id=bob.pk).count() == 1


def test_other_users_ids_are_ignored(api, ids, bob):
    theirs = Notification.objects.get(recipient=bob).pk
    assert post_json(api, {"ids": [theirs]}).json() == {"unread": 5}
    assert unread(user_id=bob.pk).filter(pk=theirs).exists()


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{oops",
        b"\xff\xfe",
        "[1, 2]",
        "null",
        "{}",
        {"ids": [1], "all": True},
        {"all": False},
        {"all": 1},
        {"ids": []},
        {"ids": "1"},
        {"ids": ["1"]},
        {"ids": [1.0]},
        {"ids": [0]},
        {"ids": [True]},
        {"ids": [2**64]},
        {"ids": list(range(1, 600))},
        "[" * 5000 + "]" * 5000,
    ],
)
def test_read_bad_bodies_are_400(api, ids, body):
    response = post_json(api, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert unread().count() == Notification.objects.count()


def test_csrf_is_enforced_on_post(alice, ids):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post_json(client, {"all": True}).status_code == 403
    client.get("/notifications/")
    token = client.cookies["csrftoken"].value
    response = client.post(READ, json.dumps({"all": True}), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_a_page_costs_its_queries_not_one_per_notification(api, alice, bob, make_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    notify(alice, "first", actor=bob, kind="comment")

    def page_queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as queries:
            results = api.get(LIST).json()["results"]
        return len(queries), results

    baseline, _ = page_queries()
    for n in range(4):
        notify(alice, f"from {n}", actor=make_user(f"actor{n}"), kind="system")
    count, results = page_queries()
    assert count == baseline and len(results) == 5
    assert results[0]["actor"]["username"] == "actor3" and results[0]["text"] == "from 3"
