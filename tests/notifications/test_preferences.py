"""/api/preferences/ and the /settings/notifications/ page."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from notifications import selectors

pytestmark = pytest.mark.django_db

API = "/api/preferences/"
PAGE = "/settings/notifications/"
DEFAULTS = {
    "email": {"comment": True, "reply": True, "mention": True, "system": True, "direct": True},
    "email_delay_minutes": 10,
}


@pytest.fixture
def api(alice):
    client = Client()
    client.force_login(alice)
    return client


def post_json(client, body):
    return client.post(API, body if isinstance(body, str) else json.dumps(body), content_type="application/json")


def test_defaults_for_a_user_who_never_chose(api):
    assert api.get(API).json() == DEFAULTS


def test_a_subset_changes_only_itself(api):
    assert post_json(api, {"email": {"comment": False}}).json() == {
        **DEFAULTS,
        "email": {**DEFAULTS["email"], "comment": False},
    }
    changed = post_json(api, {"email_delay_minutes": 0}).json()
    assert (changed["email"]["comment"], changed["email_delay_minutes"]) == (False, 0)
    assert api.get(API).json() == changed


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        [],
        {},
        {"email": {"sms": True}},
        {"email": {"comment": "no"}},
        {"email": ["comment"]},
        {"email_delay_minutes": -1},
        {"email_delay_minutes": 1441},
        {"email_delay_minutes": 5.5},
        {"email_delay_minutes": True},
        {"colour": "blue"},
    ],
)
def test_bad_changes_are_400_and_change_nothing(api, alice, body):
    response = post_json(api, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert selectors.preferences_of(user_id=alice.pk) == DEFAULTS


def test_anonymous_and_other_methods(api):
    assert Client().get(API).status_code == 401
    assert api.put(API).status_code == 405


def test_the_page_shows_and_saves_the_preferences(api):
    page = api.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="email_delay_minutes"' in html and 'value="10"' in html
    assert 'id="desktop-enable"' in html
    response = api.post(PAGE, {"email_reply": "on", "email_direct": "on", "email_delay_minutes": "30"})
    assert response.status_code == 302
    assert api.get(API).json() == {
        "email": {"comment": False, "reply": True, "mention": False, "system": False, "direct": True},
        "email_delay_minutes": 30,
    }
    assert "Your notification settings are saved." in api.get(PAGE).content.decode()


@pytest.mark.parametrize("delay", ["-5", "2000", "soon", ""])
def test_the_page_shows_validation_errors_and_saves_nothing(api, alice, delay):
    response = api.post(PAGE, {"email_comment": "on", "email_delay_minutes": delay})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="delay-error"' in html and 'aria-invalid="true"' in html
    assert selectors.preferences_of(user_id=alice.pk) == DEFAULTS


def test_the_page_needs_login_and_csrf(alice):
    assert Client().get(PAGE).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(PAGE, {"email_delay_minutes": "0"}).status_code == 403
    assert selectors.preferences_of(user_id=alice.pk) == DEFAULTS
