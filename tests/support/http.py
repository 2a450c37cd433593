"""A small cookie-keeping HTTP client for talking to a real server process."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class Browserish:
    """Keeps cookies, sends CSRF tokens and Origin like a browser would."""

    def __init__(self, server: Any, cookie: str | None = None) -> None:
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        if cookie:
            name, _, value = cookie.partition("=")
            self.set_cookie(name, value)

    def set_cookie(self, name: str, value: str) -> None:
        self.jar.set_cookie(
            http.cookiejar.Cookie(
                0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False, None, None, {}
            )
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        headers = {"Origin": self.server.origin, "Referer": self.server.url + path, **(headers or {})}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            body = urllib.parse.urlencode(data, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        token = self.cookie("csrftoken")
        if token:
            headers["X-CSRFToken"] = token
        req = urllib.request.Request(self.server.url + path, data=body, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)

    def post_form(self, path: str, data: dict[str, Any]) -> tuple[int, str]:
        """GET the page for a CSRF cookie, then POST the form."""
        if not self.cookie("csrftoken"):
            self.get(path)
        return self.request("POST", path, data={**data, "csrfmiddlewaretoken": self.cookie("csrftoken") or ""})

    def login(self, login: str, password: str) -> int:
        status, _ = self.post_form("/accounts/login/", {"login": login, "password": password})
        return status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
