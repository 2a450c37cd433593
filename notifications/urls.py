from django.urls import path

from notifications import views

urlpatterns = [
    path("notifications/", views.page, name="notifications_page"),
    path("notifications/read/", views.page_mark_read, name="notifications_page_read"),
    path("api/notifications/", views.api_list, name="notifications_api"),
    path("api/notifications/read/", views.api_read, name="notifications_api_read"),
    path("api/posts/<int:post_id>/mute/", views.api_post_mute, name="post_mute_api"),
    path("posts/<int:post_id>/mute/", views.page_post_mute, name="post_mute"),
    path("api/preferences/", views.api_preferences, name="preferences_api"),
    path("settings/notifications/", views.settings_page, name="notification_settings"),
    path("email/unsubscribe/<str:token>/", views.unsubscribe, name="email_unsubscribe"),
]
