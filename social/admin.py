from allauth.account.decorators import secure_admin_login
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from social import services
from social.models import Comment, Post

# The admin signs in through allauth's login page, so its password-guessing
# throttle (ACCOUNT_RATE_LIMITS) covers staff accounts too; the admin's own
# form has no limit at all.
admin.site.login = secure_admin_login(admin.site.login)


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "created_at"]
    search_fields = ["title", "body", "author__username"]
    raw_id_fields = ["author"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["post", "author", "parent", "created_at"]
    search_fields = ["body", "author__username"]
    raw_id_fields = ["author", "post", "parent"]


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class SocialUserAdmin(UserAdmin):
    actions = ["end_sessions"]

    @admin.action(description="End all sessions (logs out and closes live sockets)")
    def end_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Log the selected users out everywhere; their open sockets close within a second."""
        ended = services.sessions_end_all(users=list(queryset))
        self.message_user(request, f"Ended {ended} session(s).", messages.SUCCESS)
