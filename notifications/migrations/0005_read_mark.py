"""Mark-all-read as one row per user (``ReadMark``).

Reversed, it first settles every mark (the rows under it get ``read_at``), so
the code before it, which knows only ``read_at``, sees them read as well.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def settle_every_mark(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    for mark in apps.get_model("notifications", "ReadMark").objects.all():
        Notification.objects.filter(recipient_id=mark.user_id, id__lte=mark.up_to, read_at__isnull=True).update(
            read_at=mark.marked_at
        )


class Migration(migrations.Migration):
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
        migrations.RunPython(migrations.RunPython.noop, reverse_code=settle_every_mark, elidable=False),
    ]
