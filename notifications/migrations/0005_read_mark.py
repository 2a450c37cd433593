"""Mark-all-read as one row per user (``ReadMark``), and the unread index keyed by id too.

The badge now counts the unread rows above the user's mark: with ``id`` in
the partial index that is an index-only range. The new index is built before
the old one is dropped, both ``CONCURRENTLY`` on PostgreSQL (social/db/operations.py).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from social.db.operations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("notifications", "0004_recipient_index_dropped"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReadMark",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("up_to", models.PositiveBigIntegerField(default=0)),
                ("settled_up_to", models.PositiveBigIntegerField(default=0)),
                ("marked_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
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
