"""``manage.py notify <username> "text" [--url /path/]``: notify() from another process."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.management.commands._delivery import delivery_note
from notifications.services import notify


class Command(BaseCommand):
    help = (
        "Send a system notification to a user. It reaches their open tabs live only when this command "
        "and the server share a Redis channel layer (the same REDIS_URL, and the same DATABASE_URL); "
        "without REDIS_URL it is only stored and shows up on their next page load or resume."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("text")
        parser.add_argument("--url", default=None, help="a site path such as /posts/3/, or an http(s) URL")

    def handle(self, *args: Any, username: str, text: str, url: str | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        try:
            notification = notify(user, text, url=url)
        except ValueError as error:
            raise CommandError(str(error)) from None
        live, note = delivery_note()
        self.stdout.write(note if live else self.style.WARNING(note))
        self.stdout.write(f"notification {notification.pk} {'sent to' if live else 'stored for'} {username}")
