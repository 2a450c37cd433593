"""The bell socket: /ws/notifications/."""

from social.realtime.consumers import RealtimeConsumer
from social.realtime.groups import user_group


class NotificationConsumer(RealtimeConsumer):
    """Joins the user's personal group ``user_<id>``."""

    def group_names(self) -> list[str]:
        return [user_group(self.user_id)]
