"""Production settings, headers and login throttling."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "social.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "social.example.com",
    "TRUSTED_PROXIES": "127.0.0.1,::1",
}


def test_check_deploy_is_clean_in_production():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_warns_when_no_proxy_is_trusted():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "TRUSTED_PROXIES": ""})
    assert result.returncode != 0
    assert "social.W002" in result.stdout + result.stderr


def test_wildcard_hosts_are_refused():
    result = run_manage("check", **{**PRODUCTION, "ALLOWED_HOSTS": "*"})
    assert result.returncode != 0
    assert "social.E001" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DEBUG="0", ALLOWED_HOSTS="social.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_security_headers_on_pages(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_templates_have_no_inline_script(client, make_user):
    client.force_login(make_user("alice"))
    for path in ["/", "/accounts/password/change/"]:
        page = client.get(path).content.decode()
        assert "<script>" not in page
        assert "<script src=" in page


@pytest.mark.django_db
def test_login_is_throttled_after_repeated_failures(client, make_user):
    make_user("alice", password="right-password-1")
    for _ in range(5):
        response = client.post("/accounts/login/", {"login": "alice", "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"login": "alice", "password": "right-password-1"})
    assert response.status_code in (200, 429)
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_csrf_is_enforced_on_forms(make_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("alice"))
    assert strict.post("/", {"title": "t", "body": "b"}).status_code == 403
