"""Production installs requirements.txt only: no test or lint tools in it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {
    "pytest", "pytest-django", "pytest-asyncio", "pytest-timeout", "hypothesis", "playwright", "ruff", "aiosmtpd",
}


def pinned(path: Path) -> dict[str, str]:
    """``{name: line}`` of the requirement lines of a file (includes and comments left out)."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {re.split(r"[\[=<>~ ]", line)[0].lower(): line for line in lines if line and not line.startswith("-r")}


def test_runtime_requirements_hold_no_test_tools_and_dev_ones_add_them():
    runtime, dev = pinned(ROOT / "requirements.txt"), pinned(ROOT / "requirements-dev.txt")
    assert not DEV_ONLY & set(runtime)
    assert set(dev) >= DEV_ONLY
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_every_requirement_is_pinned():
    for name, line in {**pinned(ROOT / "requirements.txt"), **pinned(ROOT / "requirements-dev.txt")}.items():
        assert "==" in line, name
