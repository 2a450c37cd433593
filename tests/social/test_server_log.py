"""What a real server process logs: one start-up line, each request warning once."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.server import LOG_DIR, DaphneServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def log_lines(path: Path, needle: str, *, at_least: int = 1, timeout: float = 10) -> list[str]:
    """The log's lines containing ``needle``, once there are ``at_least`` of them (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in path.read_text().splitlines() if needle in line]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture
def server(server_database):
    name = f"log-{time.monotonic_ns()}"
    started = DaphneServer(database=server_database, name=name).start()
    yield started, LOG_DIR / f"{name}-{started.port}.log"
    started.stop()


def test_start_logs_one_line_with_address_channel_layer_and_database(server, settings):
    daphne, log = server
    log_lines(log, "serving http://")
    time.sleep(0.5)  # any second announcement would come straight after the first
    lines = log_lines(log, "serving http://")
    assert len(lines) == 1
    line = lines[0]
    assert f"serving http://127.0.0.1:{daphne.port}/" in line
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1] in line
    vendor = "postgresql" if "postgres" in daphne.env["DATABASE_URL"] else "sqlite"
    assert f"database {vendor} " in line


def test_a_request_warning_is_logged_once(server):
    daphne, log = server
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{daphne.url}/no-such-page-{daphne.port}/", timeout=10)
    assert missing.value.code == 404
    # Once the request after it is logged, a second copy of the warning would be too.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{daphne.url}/marker-{daphne.port}/", timeout=10)
    log_lines(log, f"marker-{daphne.port}")
    # Not the access log's line: the warning's text, under any handler's format.
    assert len(log_lines(log, f"Not Found: /no-such-page-{daphne.port}/")) == 1
