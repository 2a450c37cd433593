"""Reads of the messaging app."""

from django.db.models import Count, F, Q

from dm.models import Block, Conversation, Membership


def inbox_unread_count(*, user_id: int) -> int:
    """Unread direct messages of the user, over all their direct conversations.

    Messages from users they have blocked do not count.
    """
    blocked = Block.objects.filter(blocker_id=user_id).values("blocked_id")
    memberships = Membership.objects.filter(user_id=user_id, conversation__kind=Conversation.Kind.DIRECT).annotate(
        unread=Count(
            "conversation__messages",
            filter=Q(conversation__messages__id__gt=F("last_read_id"))
            & ~Q(conversation__messages__sender_id=user_id)
            & ~Q(conversation__messages__sender_id__in=blocked),
        )
    )
    return sum(m.unread for m in memberships)
