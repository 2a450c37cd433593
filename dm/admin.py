from django.contrib import admin

from dm.models import Block, Conversation, Membership, Message, RoomInvitation


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class RoomInvitationInline(admin.TabularInline):
    model = RoomInvitation
    fk_name = "conversation"
    extra = 0
    raw_id_fields = ["invitee", "inviter"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "slug", "name", "private", "last_message_at"]
    list_filter = ["kind", "private"]
    search_fields = ["slug", "name", "direct_key"]
    inlines = [MembershipInline, RoomInvitationInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "sender", "created_at"]
    raw_id_fields = ["conversation", "sender"]
    search_fields = ["body"]


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ["blocker", "blocked", "created_at"]
    raw_id_fields = ["blocker", "blocked"]
