from django.contrib import admin
from django.urls import include, path

from social import views

urlpatterns = [
    path("", views.feed, name="feed"),
    path("posts/<int:post_id>/", views.post_detail, name="post_detail"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("notifications.urls")),
    path("", include("dm.urls")),
]
