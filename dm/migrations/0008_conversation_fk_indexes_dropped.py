"""Drop the single-column conversation indexes that composite ones already lead with.

``(conversation, id)`` serves every read by conversation and ``(conversation, user)``
every read of a conversation's members; the plain foreign-key indexes only cost a
write per row and tempted the planner into reading a whole conversation to count
its unread tail. Dropped with ``DROP INDEX CONCURRENTLY`` on PostgreSQL
(social/db/operations.py), so a table with millions of rows keeps serving.
"""

import django.db.models.deletion
from django.db import migrations, models

from social.db.operations import DropIndexConcurrently


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("dm", "0007_membership_muted_emailed"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="membership",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="dm.conversation",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="dm.conversation",
                    ),
                ),
            ],
            database_operations=[
                DropIndexConcurrently(
                    table="dm_membership", column="conversation_id", name="dm_membership_conversation_id_27971591"
                ),
                DropIndexConcurrently(
                    table="dm_message", column="conversation_id", name="dm_message_conversation_id_685aec6a"
                ),
            ],
        ),
    ]
