"""Messaging pages and the conversation parts of the JSON API."""

from django.urls import path

from dm import views

app_name = "dm"

urlpatterns = [
    path("messages/", views.inbox, name="inbox"),
    path("messages/<str:username>/", views.direct, name="direct"),
    path("messages/<str:username>/block/", views.direct_block, name="direct_block"),
    path("rooms/", views.rooms, name="rooms"),
    path("rooms/<str:slug>/", views.room, name="room"),
    path("rooms/<str:slug>/join/", views.room_join, name="room_join"),
    path("rooms/<str:slug>/decline/", views.room_decline, name="room_decline"),
    path("rooms/<str:slug>/leave/", views.room_leave, name="room_leave"),
    path("rooms/<str:slug>/members/", views.room_invite, name="room_invite"),
    path("rooms/<str:slug>/members/<str:username>/remove/", views.room_remove, name="room_remove"),
    path("api/conversations/", views.api_conversations, name="api_conversations"),
    path("api/messages/<str:username>/", views.api_direct_messages, name="api_direct_messages"),
    path("api/rooms/<str:slug>/messages/", views.api_room_messages, name="api_room_messages"),
]
