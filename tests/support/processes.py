"""Code that runs in a separate Python process (multiprocessing, spawn): no Django import at the top,
since the child imports this module before it has set Django up."""

from __future__ import annotations

import os
from typing import Any


def setup_django(database: str) -> None:
    """Point this fresh process at the test run's database and set Django up."""
    os.environ["DATABASE_URL"] = database
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()


def comment_at_once(database: str, post_ids: list[int], author_id: int, barrier: Any) -> None:
    """Per post: open a transaction, meet the other process at the barrier, comment, commit."""
    setup_django(database)
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from social.models import Post
    from social.services import comment_create

    author = get_user_model().objects.get(pk=author_id)
    for post_id in post_ids:
        post = Post.objects.get(pk=post_id)
        with transaction.atomic():
            # Both transactions are open before either comments, so each could
            # miss the other's uncommitted notification without the group lock.
            barrier.wait(timeout=60)
            comment_create(author=author, post=post, body=f"on {post_id}")
