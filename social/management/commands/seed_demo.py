"""Create demo users, posts, comments and a room so a newcomer can try the site at once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from dm import services as dm_services
from dm.models import Conversation
from social.models import Comment, Post

DEMO_PASSWORD = "demo-pass-123"
DEMO_USERS = ["alice", "bob", "carol"]


class Command(BaseCommand):
    help = f"Create demo users {', '.join(DEMO_USERS)} (password {DEMO_PASSWORD!r}), posts, comments and a room."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        users = {}
        for name in DEMO_USERS:
            user, created = User.objects.get_or_create(username=name, defaults={"email": f"{name}@example.com"})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            users[name] = user
        if not Post.objects.filter(author=users["alice"], title="Hello from Alice").exists():
            post = Post.objects.create(
                author=users["alice"], title="Hello from Alice", body="First post! @bob, what do you think?"
            )
            first = Comment.objects.create(post=post, author=users["bob"], body="Welcome, Alice!")
            Comment.objects.create(post=post, author=users["carol"], body="Hi both.", parent=first)
            Post.objects.create(author=users["bob"], title="Weekend plans", body="Anyone up for a hike?")
        room = Conversation.objects.filter(slug="general").first() or dm_services.room_create(
            creator=users["alice"], name="General", slug="general", private=False
        )
        for user in users.values():
            dm_services.room_join(user=user, conversation=room)
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready. Log in as {', '.join(DEMO_USERS)} with password {DEMO_PASSWORD!r}.")
        )
