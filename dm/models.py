"""Conversations (direct pairs and rooms), members with read markers, invitations, messages, reactions, blocks.

Direct messages and rooms are one concept with two kinds: a Conversation with
Memberships and Messages. Each membership carries the member's read marker.
"""

from django.conf import settings
from django.db import models

from social import bounds


class Conversation(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct"
        ROOM = "room"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Direct pairs: "<low id>:<high id>", unique so concurrent first messages
    # cannot create two conversations for one pair.
    direct_key = models.CharField(max_length=41, unique=True, null=True, blank=True)
    # Rooms only.
    slug = models.SlugField(max_length=bounds.ROOM_SLUG_CHARS, unique=True, null=True, blank=True)
    name = models.CharField(max_length=bounds.ROOM_NAME_CHARS, blank=True, default="")
    private = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Not indexed: every message stamps it, and an indexed column makes each
    # stamp a non-HOT update that leaves a dead row behind (a hot conversation's
    # table and its scans grew with every message). Inbox lists sort a user's
    # own conversations, which the membership index finds.
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="direct", direct_key__isnull=False, slug__isnull=True))
                | (models.Q(kind="room", slug__isnull=False, direct_key__isnull=True)),
                name="conversation_kind_fields",
            )
        ]

    def __str__(self) -> str:
        return self.name or self.slug or self.direct_key or str(self.pk)


class Membership(models.Model):
    # Not indexed alone: the (conversation, user) constraint leads with it.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    # Id of the newest message this member has read; only ever moves forward.
    last_read_id = models.BigIntegerField(default=0)
    # Muted: still delivered to open windows and counted in its own unread,
    # but out of the bell's inbox total, no mentions, no email.
    muted = models.BooleanField(default=False)
    # Id of the newest message taken into an email digest for this member.
    emailed_up_to = models.BigIntegerField(default=0)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="membership_once")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class RoomInvitation(models.Model):
    """A pending invitation to a private room: the invitee becomes a member only by accepting."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_invitations")
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "invitee"], name="room_invitation_once")]

    def __str__(self) -> str:
        return f"{self.invitee_id} invited to {self.conversation_id}"


class Message(models.Model):
    """A chat message; edits, deletes and reactions change it in place under a new ``version``.

    ``version`` comes from the same counter as ids (the table's id sequence):
    a new message's version is its id, and every change takes the next
    number. So a client that has seen up to version V has seen exactly the
    messages with id <= V, which is how a ``?since=`` replay tells a message
    the client cannot have yet from an update of one it has.
    """

    # Not indexed alone: (conversation, id) leads with it, and with both the planner
    # could read a whole conversation through this one to count a few unread.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.TextField(max_length=bounds.MESSAGE_BODY_CHARS)
    created_at = models.DateTimeField(auto_now_add=True)
    client_id = models.CharField(max_length=bounds.CLIENT_ID_CHARS, null=True, blank=True)
    # No default: only the message services number a message (dm.versions).
    version = models.BigIntegerField()
    edited_at = models.DateTimeField(null=True, blank=True)
    # A tombstone: the body and reactions are gone, the row keeps its place.
    deleted = models.BooleanField(default=False)
    # Not a database index of its own: the partial one below covers the few rows that reply.
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # The reactions summary as the message object carries it, rewritten from
    # the Reaction rows by each toggle (under the conversation's lock), so
    # reading history costs no query per message.
    reactions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["conversation", "id"], name="message_conversation_id"),
            models.Index(fields=["conversation", "version"], name="message_conversation_version"),
            models.Index(fields=["reply_to"], name="message_reply_to", condition=models.Q(reply_to__isnull=False)),
        ]
        constraints = [
            # Idempotent sends: a resent client_id finds the stored message.
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="message_client_id_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender_id} in {self.conversation_id}: {self.body[:40]}"


class Reaction(models.Model):
    """One user's reaction with one emoji to one message (a toggle adds or removes the row)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=bounds.EMOJI_BYTES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_once")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.emoji} {self.message_id}"


class Block(models.Model):
    blocker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once")]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class Presence(models.Model):
    """One row per open room socket, shared by all server processes.

    A user is online in a room while any of their rows is fresh; rows are
    refreshed by the socket's heartbeat, so a killed process's rows go stale.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "user"], name="presence_room_user")]

    def __str__(self) -> str:
        return f"{self.user_id} online in {self.conversation_id}"


class PresenceVersion(models.Model):
    """How many join/leave announcements a user's presence in a room has had, and the last one.

    Each announcement carries the next number, decided under the member lock,
    so a room socket can drop one that arrives after a newer one (a sweeper's
    ``leave`` and the swept user's ``join`` come from different processes).
    Kept apart from the membership so it survives leaving and re-joining.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    version = models.BigIntegerField(default=0)
    # What the room was last told: True after a join, False after a leave. A
    # leave is announced a grace period after the last socket closed, so a
    # reconnect (or connect/close churn) within it announces nothing at all.
    online = models.BooleanField(default=False)
    # When the user's last socket in the room closed (the grace period runs from here).
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="presence_version_once")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}: {self.version}"
