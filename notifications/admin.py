"""Admin: browse notifications; "Add" sends a system notification through notify()."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from notifications import selectors, services
from notifications.models import Digest, Notification


class SystemNotificationForm(forms.ModelForm):
    """The add form: whom to tell what, and an optional link."""

    class Meta:
        model = Notification
        fields = ["recipient", "text", "url"]

    def clean_url(self) -> str:
        try:
            return services.clean_url(self.cleaned_data["url"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class ReadFilter(admin.SimpleListFilter):
    """Read or unread by the badge's rule (``selectors.unread``): ``read_at`` alone misses the rows a
    mark-all-read covered before its job settled them."""

    title = "read"
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Read"), ("no", "Unread")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> QuerySet[Notification]:
        if self.value() == "no":
            return queryset.filter(is_unread=True)
        if self.value() == "yes":
            return queryset.filter(is_unread=False)
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["recipient", "kind", "text", "created_at", "read", "read_at"]
    list_filter = ["kind", ReadFilter]
    search_fields = ["recipient__username", "text"]
    raw_id_fields = ["recipient", "actor", "comment", "post"]
    actions = ["mark_read"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return super().get_queryset(request).annotate(is_unread=Exists(selectors.unread().filter(pk=OuterRef("pk"))))

    @admin.display(boolean=True, description="read", ordering="-is_unread")
    def read(self, obj: Notification) -> bool:
        """Read by the badge's rule (superseded rows, never shown, count as read here)."""
        return not obj.is_unread

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = SystemNotificationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A sent notification is a record: only its read state may change (an
        # editable url would let a staff edit plant a javascript: link).
        if obj is None:
            return []
        return [
            "recipient",
            "kind",
            "actor",
            "text",
            "url",
            "comment",
            "post",
            "created_at",
            "group_key",
            "superseded_by",
            "count",
            "actors",
            "replaces",
            "emailed_at",
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["recipient", "text", "url"]
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Notification, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # Through notify(), so the recipient's open tabs get it live on commit.
        sent = services.notify(obj.recipient, obj.text, url=obj.url or None, actor=request.user)
        obj.pk = sent.pk

    @admin.action(description="Mark selected notifications read")
    def mark_read(self, request: HttpRequest, queryset: Any) -> None:
        for user_id in set(queryset.values_list("recipient_id", flat=True)):
            ids = list(queryset.filter(recipient_id=user_id).values_list("id", flat=True))
            services.notifications_mark_read(user_id=user_id, ids=ids)
        self.message_user(request, "Marked read.", messages.SUCCESS)


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    """Email digests as stored, read only: one claimed but never sent was interrupted mid-send."""

    list_display = ["user", "to", "items", "created_at", "claimed_at", "claimed_by", "sent_at"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter), ("claimed_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "to"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
