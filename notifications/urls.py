from django.urls import path

from notifications import views

urlpatterns = [
    path("notifications/", views.page, name="notifications_page"),
    path("notifications/read/", views.page_mark_read, name="notifications_page_read"),
    path("api/notifications/", views.api_list, name="notifications_api"),
    path("api/notifications/read/", views.api_read, name="notifications_api_read"),
]
