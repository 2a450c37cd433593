"""Test settings: development defaults plus a fast password hasher."""

import os

os.environ.setdefault("DEBUG", "1")

from social.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
