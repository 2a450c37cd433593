"""``superseded_by`` no longer cascades, and is no database constraint (notifications/models.py).

On PostgreSQL this only drops the foreign key constraint: no table rewrite, a
moment's lock; the column and its index stay.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_unread_index_by_id")]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="superseded_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="notifications.notification",
            ),
        ),
    ]
