"""Client addresses from a reverse proxy, believed only when the proxy is one we trust.

daphne's ``--proxy-headers`` believes ``X-Forwarded-For`` from anyone, so a
client that reaches daphne directly could name its own address on every
request and escape the per-IP login and signup throttles. This middleware
wraps the whole ASGI app instead: when the connecting peer is in
``TRUSTED_PROXIES`` (addresses or networks) the client is the right-most
``X-Forwarded-For`` address that is not itself a trusted proxy, and
``X-Forwarded-Proto`` sets the scheme; from any other peer those headers are
removed before Django sees them (so neither the throttles nor
``SECURE_PROXY_SSL_HEADER`` can be fooled).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"forwarded")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """``["10.0.0.1", "192.168.0.0/16", "::1"]`` as networks; raises ValueError on a bad one."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in networks)


class TrustedProxyMiddleware:
    """ASGI middleware: ``scope["client"]`` and ``scope["scheme"]`` from trusted proxies only."""

    def __init__(self, app: Any, trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self.rewrite(scope)
        await self.app(scope, receive, send)

    def rewrite(self, scope: dict[str, Any]) -> dict[str, Any]:
        """The scope as the application should see it."""
        headers = scope.get("headers", [])
        peer = (scope.get("client") or ("", 0))[0]
        if not self.trusted or not _trusted(peer, self.trusted):
            kept = [(name, value) for name, value in headers if name.lower() not in _FORWARDED]
            return {**scope, "headers": kept} if len(kept) != len(headers) else scope
        values: dict[bytes, str] = {}
        for name, value in headers:
            # Repeated header lines are one comma-separated list (RFC 9110).
            key = name.lower()
            values[key] = f"{values[key]},{value.decode('latin-1')}" if key in values else value.decode("latin-1")
        scope = dict(scope)
        hops = [hop.strip() for hop in values.get(b"x-forwarded-for", "").split(",") if hop.strip()]
        # Right to left: each trusted proxy appended the address it saw; the
        # first untrusted one is the client (anything left of it is the client's say).
        for hop in reversed(hops):
            if not _trusted(hop, self.trusted):
                scope["client"] = (hop, 0)
                break
        proto = values.get(b"x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            websocket = scope["type"] == "websocket"
            scope["scheme"] = {"http": "ws", "https": "wss"}[proto] if websocket else proto
        return scope
