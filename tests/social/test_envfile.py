"""The development env file: what manage.py and social.serve take from .env."""

import subprocess
import sys
from pathlib import Path

import pytest

from social import envfile

ROOT = Path(__file__).resolve().parents[2]


def test_file_fills_only_what_the_environment_leaves_unset(tmp_path):
    path = tmp_path / "dev.env"
    path.write_text(
        "# local services\n\nexport DATABASE_URL=postgres://postgres@127.0.0.1:5432/social_dev\n"
        "REDIS_URL='redis://127.0.0.1:6379/5'\nPORTS=\"8001 8002\"\n"
    )
    environ = {"ENV_FILE": str(path), "REDIS_URL": "redis://elsewhere:6379/1"}
    added = envfile.load(environ=environ)
    assert added == {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/social_dev", "PORTS": "8001 8002"}
    assert environ["REDIS_URL"] == "redis://elsewhere:6379/1"


def test_empty_env_file_variable_reads_nothing(tmp_path):
    assert envfile.env_file_path(environ={"ENV_FILE": ""}) is None
    assert envfile.load(environ={"ENV_FILE": str(tmp_path / "missing.env")}) == {}


def test_a_line_that_is_not_key_value_is_an_error():
    with pytest.raises(ValueError, match="not a KEY=value line"):
        envfile.parse(text="DATABASE_URL postgres://x\n")


def test_manage_py_commands_use_the_env_file(tmp_path):
    """A command run without the server's DATABASE_URL in its shell still writes where the file says."""
    database = tmp_path / "from-env-file.sqlite3"
    path = tmp_path / "dev.env"
    path.write_text(f"DATABASE_URL=sqlite:///{database}\n")
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "ENV_FILE": str(path)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    assert database.exists()
