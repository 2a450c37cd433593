"""X-Forwarded-For is believed only from TRUSTED_PROXIES, so a direct client cannot pick its own IP."""

import pytest

from social.proxy import TrustedProxyMiddleware, parse_networks
from tests.support.http import Browserish


def seen_scope(trusted, client, headers):
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    middleware = TrustedProxyMiddleware(app, parse_networks(trusted))
    scope = {"type": "http", "client": (client, 5000), "scheme": "http", "headers": headers}
    import asyncio

    asyncio.run(middleware(scope, None, None))
    return seen


def test_untrusted_peer_keeps_its_address_and_loses_the_forwarded_headers():
    scope = seen_scope([], "203.0.113.9", [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"https")])
    assert scope["client"][0] == "203.0.113.9"
    assert scope["headers"] == []
    assert scope["scheme"] == "http"


def test_trusted_proxy_gives_the_rightmost_untrusted_address_and_scheme():
    headers = [(b"X-Forwarded-For", b"6.6.6.6, 198.51.100.7, 10.0.0.2"), (b"x-forwarded-proto", b"https")]
    scope = seen_scope(["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", headers)
    # 6.6.6.6 is what the client claimed; 198.51.100.7 is what the first trusted proxy saw.
    assert scope["client"][0] == "198.51.100.7"
    assert scope["scheme"] == "https"


def test_bad_trusted_proxy_setting_is_refused():
    with pytest.raises(ValueError):
        parse_networks(["not-an-address"])


def _failed_logins(server, count, rotate_ip):
    statuses = []
    for attempt in range(count):
        client = Browserish(server)
        client.get("/accounts/login/")
        headers = {"X-Forwarded-For": f"198.51.100.{attempt + 1}"} if rotate_ip else {}
        # A new login name each time: only the per-IP limit can stop this.
        status, page = client.request(
            "POST",
            "/accounts/login/",
            data={"login": f"nobody{attempt}", "password": "wrong", "csrfmiddlewaretoken": client.cookie("csrftoken")},
            headers=headers,
        )
        statuses.append("throttled" if status == 429 or "Too many failed login attempts" in page else status)
    return statuses


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_rotating_forwarded_for_does_not_escape_the_login_throttle(start_server):
    server = start_server("direct", LOGIN_FAILED_RATE="10/m/ip")
    statuses = _failed_logins(server, 12, rotate_ip=True)
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == ["throttled", "throttled"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_behind_a_trusted_proxy_each_client_address_has_its_own_budget(start_server):
    server = start_server("proxied", LOGIN_FAILED_RATE="10/m/ip", TRUSTED_PROXIES="127.0.0.1")
    assert _failed_logins(server, 12, rotate_ip=True) == [200] * 12
