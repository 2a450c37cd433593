"""Real background-job worker processes (``manage.py jobs_worker``) for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.server import LOG_DIR, ROOT


class JobWorker:
    """One ``manage.py jobs_worker`` process on the test run's database."""

    def __init__(self, *, database: str, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.name = name
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEBUG": "1",
            "DATABASE_URL": database,
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> JobWorker:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"worker-{self.name}.log", "ab")  # noqa: SIM115  (owned by the process)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "jobs_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (the worker finishes its job), then SIGKILL if it hangs."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
