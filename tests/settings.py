"""Test settings: development defaults plus a fast password hasher."""

import os

os.environ.setdefault("DEBUG", "1")
# A test run is configured by its own environment only: neither it nor the server
# processes and commands it starts read the developer's .env (social/envfile.py).
os.environ["ENV_FILE"] = ""
# Redis keys and channel-layer groups of this run apart from any other run on
# the same Redis; server processes the tests start inherit the parent's value.
os.environ.setdefault("CHANNEL_PREFIX", f"test{os.getpid()}")
os.environ.setdefault("CACHE_PREFIX", f"test{os.getpid()}")
# Leaves are announced this long after a last socket closes (the default 2 s
# would slow every test that waits for one); server processes inherit it.
os.environ.setdefault("WS_PRESENCE_LEAVE_GRACE_MS", "200")
# Tests open many sockets for one user within a minute; the tests of that
# limit set their own.
os.environ.setdefault("WS_CONNECTS_PER_MINUTE", "100000")

from social.settings import *  # noqa: E402,F403
from social.settings import BASE_DIR, DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# One test database per test run, so two runs on one checkout (a developer and
# CI, or two terminals) never share one. Server processes started by the tests
# are pointed at it through DATABASE_URL.
_run = os.getpid()
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    (BASE_DIR / "test-artifacts").mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-artifacts" / f"test-db-{_run}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_run}"}
