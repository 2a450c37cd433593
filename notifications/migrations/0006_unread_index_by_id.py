"""The unread index keyed by id too: the badge counts the unread rows above the user's read
mark, and with ``id`` in the partial index that is an index-only range.

The new index is built before the old one is dropped, both ``CONCURRENTLY`` on
PostgreSQL (social/db/operations.py), in a migration of their own: one that
fails part-way can simply be run again.
"""

from django.db import migrations, models

from social.db.operations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("notifications", "0005_read_mark")]

    operations = [
        AddIndexConcurrently(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("read_at__isnull", True), ("superseded_by__isnull", True)),
                fields=["recipient", "id"],
                name="notif_unread_by_id",
            ),
        ),
        RemoveIndexConcurrently(model_name="notification", name="notif_unread_visible"),
    ]
