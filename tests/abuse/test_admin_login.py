"""The admin login goes through allauth, so password guessing against a superuser is throttled."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_admin_login_redirects_to_the_throttled_allauth_login(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    # The admin's own form is not served, so it cannot be posted to either.
    posted = client.post("/admin/login/", {"username": "root", "password": "guess"})
    assert posted.status_code == 302 and posted["Location"].startswith("/accounts/login/")


def test_fifteen_wrong_passwords_then_the_right_one_is_refused(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "right-password-1")
    for attempt in range(15):
        client.post("/accounts/login/", {"login": "root", "password": f"wrong-{attempt}"})
    response = client.post("/accounts/login/?next=/admin/", {"login": "root", "password": "right-password-1"})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 429 or b"Too many failed login attempts" in response.content
    assert client.get("/admin/").status_code == 302
