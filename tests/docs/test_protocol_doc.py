"""docs/protocol.md names exactly what the code has: endpoints, frames, error and close codes, limits.

Each check reads one table of the document (its first column, one name in
backticks per row) and compares it with the code, both ways, so neither can
gain or lose something without the other.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from django.conf import settings
from django.urls import URLPattern, URLResolver, resolve

from dm.consumers import DirectConsumer, RoomConsumer
from notifications.consumers import NotificationConsumer
from social import urls
from social.realtime import protocol
from social.realtime.consumers import NotFoundConsumer
from social.routing import websocket_urlpatterns

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()
CODE_DIRS = ("social", "notifications", "dm")
STANDARD_CLOSE_CODES = {1000, 1001, 1006, 1009, 1011, 1012}
SOCKETS = {"bell": NotificationConsumer, "dm": DirectConsumer, "room": RoomConsumer}


def table(heading: str) -> list[list[str]]:
    """The rows (cells, header and rule left out) of the first table under ``heading``."""
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", DOC, re.M | re.S)
    assert match, f"docs/protocol.md has no section {heading!r}"
    lines = [line for line in match.group(1).splitlines() if line.startswith("|")]
    assert len(lines) > 2, f"no table under {heading!r}"
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def names(heading: str) -> list[str]:
    """The first column's name of every row of a table."""
    found = []
    for row in table(heading):
        match = re.fullmatch(r"`([^`]+)`", row[0])
        assert match, f"{heading}: first cell {row[0]!r} is not one name in backticks"
        found.append(match.group(1))
    return found


def source_trees() -> list[ast.Module]:
    """Every application module (no migrations, no tests)."""
    paths = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts]
    return [ast.parse(path.read_text()) for path in paths]


def built_frame_types() -> set[str]:
    """``type`` of every frame the code builds: dict literals with a constant ``"type"`` (not ASGI/channel events)."""
    found = set()
    for tree in source_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant):
                        found.add(value.value)
    return {kind for kind in found if "." not in kind}


def sent_error_codes() -> set[str]:
    """Every error code the code raises or sends: first argument of ProtocolError, error_frame, send_error."""
    found = set()
    for tree in source_trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in {"ProtocolError", "error_frame", "send_error"}:
                continue
            first = node.args[0]
            constant = first.attr if isinstance(first, ast.Attribute) else getattr(first, "id", None)
            if constant is not None and isinstance(getattr(protocol, constant, None), str):
                found.add(getattr(protocol, constant))
    return found


def route(pattern: str) -> str:
    """A Django path pattern as the document writes it: ``/ws/dm/<username>/``."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", pattern)


def project_http_routes() -> set[str]:
    """Every HTTP path of the project's own apps (allauth's and the admin's are theirs)."""
    found = set()

    def walk(patterns: list, prefix: str) -> None:
        for entry in patterns:
            pattern = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                if pattern not in {"accounts/", "admin/"}:
                    walk(entry.url_patterns, pattern)
            elif isinstance(entry, URLPattern):
                found.add(route(pattern))

    walk(urls.urlpatterns, "")
    return found


def test_websocket_endpoints_are_the_routes():
    # The last route is the catch-all that closes every other path with 4404 (documented in prose).
    served = [p for p in websocket_urlpatterns if p.callback.consumer_class is not NotFoundConsumer]
    assert len(served) == len(websocket_urlpatterns) - 1
    assert set(names("WebSocket endpoints")) == {route(str(p.pattern)) for p in served}
    assert "Any other WebSocket path" in DOC


def test_client_frames_are_what_each_socket_handles():
    documented: dict[str, set[str]] = {socket: set() for socket in SOCKETS}
    for row in table("Client → server frames"):
        kind = row[0].strip("`")
        for socket in re.split(r",\s*", row[1]):
            documented[socket].add(kind)
    assert documented == {socket: set(consumer.frame_handlers) for socket, consumer in SOCKETS.items()}


def test_server_frames_are_the_frames_the_code_builds():
    assert set(names("Server → client frames")) == built_frame_types()


def test_error_codes_are_the_codes_the_code_sends():
    assert set(names("Error codes")) == sent_error_codes()


def test_close_codes_are_the_protocol_constants_and_the_standard_ones():
    documented = {int(code) for code in names("Close codes")}
    constants = {value for name, value in vars(protocol).items() if name.startswith("CLOSE_")}
    assert documented - STANDARD_CLOSE_CODES == constants
    assert documented >= STANDARD_CLOSE_CODES


def test_limits_are_the_realtime_settings_with_their_defaults():
    rows = {row[0].strip("`"): (row[1], row[2].strip("`")) for row in table("Limits")}
    assert set(rows) == set(settings.REALTIME)
    for key, (default, variable) in rows.items():
        if variable not in os.environ:  # a run may override a limit through the environment
            assert float(default) == float(settings.REALTIME[key]), key


def test_http_endpoints_are_the_url_patterns():
    documented = set()
    for heading in ("JSON API", "Pages and forms"):
        for name in names(heading):
            *methods, path = name.split()
            assert methods and set(methods) <= {"GET", "POST"}, name
            documented.add(path)
    outside = {path for path in documented if path.startswith(("/accounts/", "/admin/"))}
    assert documented - outside == project_http_routes()
    for path in outside:
        resolve(path)
