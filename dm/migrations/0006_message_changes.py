"""Messages that change: version, edited_at, deleted, reply_to, the reactions summary, and Reaction rows.

Existing messages take their id as their version (a new message's version is
its id; see dm.models.Message), before the (conversation, version) index is built.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('dm', '0005_room_invitation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Reaction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('emoji', models.CharField(max_length=32)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AddField(
            model_name='message',
            name='deleted',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='message',
            name='edited_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='message',
            name='reactions',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='message',
            name='reply_to',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='dm.message'),
        ),
        migrations.AddField(
            model_name='message',
            name='version',
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunSQL("UPDATE dm_message SET version = id", migrations.RunSQL.noop, elidable=True),
        # From here on only the message services number messages: no default.
        migrations.AlterField(
            model_name='message',
            name='version',
            field=models.BigIntegerField(),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['conversation', 'version'], name='message_conversation_version'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('reply_to__isnull', False)), fields=['reply_to'], name='message_reply_to'),
        ),
        migrations.AddField(
            model_name='reaction',
            name='message',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='dm.message'),
        ),
        migrations.AddField(
            model_name='reaction',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='reaction',
            constraint=models.UniqueConstraint(fields=('message', 'user', 'emoji'), name='reaction_once'),
        ),
    ]
