"""Read the development env file (``.env``, or the file ``ENV_FILE`` names) into the environment.

manage.py and ``python -m social.serve`` call ``load()`` first, so the server, the
Makefile targets and every management command (``notify``, ``demo_job``, ...) use
the same ``DATABASE_URL`` and ``REDIS_URL``. A variable already set in the
environment wins over the file; ``ENV_FILE=`` (empty) reads no file at all.
``python -m social.envfile`` prints the file's settings as shell ``export`` lines.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import MutableMapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env_file_path(*, environ: MutableMapping[str, str]) -> Path | None:
    """The env file to read, or None when ``ENV_FILE`` is set empty."""
    name = environ.get("ENV_FILE")
    if name == "":
        return None
    return Path(name) if name else ROOT / ".env"


def parse(*, text: str) -> dict[str, str]:
    """``KEY=value`` lines; blank lines, ``#`` comments and an ``export`` prefix allowed."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"not a KEY=value line: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load(*, environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set every variable of the env file that the environment does not set; return those set."""
    path = env_file_path(environ=environ)
    if path is None or not path.is_file():
        return {}
    added = {key: value for key, value in parse(text=path.read_text()).items() if key not in environ}
    environ.update(added)
    return added


def main() -> None:
    """Print what ``load()`` would add, as shell ``export`` lines (for deploy/two_servers.sh)."""
    for key, value in load(environ=dict(os.environ)).items():
        print(f"export {key}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
