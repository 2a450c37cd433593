"""Messaging pages and the conversation parts of the JSON API."""

from django.urls import path

from dm import views
from social import converters  # noqa: F401  (registers the username and roomslug converters)

app_name = "dm"

urlpatterns = [
    path("messages/", views.inbox, name="inbox"),
    path("messages/<username:username>/", views.direct, name="direct"),
    path("messages/<username:username>/block/", views.direct_block, name="direct_block"),
    path("messages/<username:username>/mute/", views.direct_mute, name="direct_mute"),
    path("rooms/", views.rooms, name="rooms"),
    path("rooms/<roomslug:slug>/", views.room, name="room"),
    path("rooms/<roomslug:slug>/join/", views.room_join, name="room_join"),
    path("rooms/<roomslug:slug>/decline/", views.room_decline, name="room_decline"),
    path("rooms/<roomslug:slug>/leave/", views.room_leave, name="room_leave"),
    path("rooms/<roomslug:slug>/mute/", views.room_mute, name="room_mute"),
    path("rooms/<roomslug:slug>/members/", views.room_invite, name="room_invite"),
    path("rooms/<roomslug:slug>/members/<username:username>/remove/", views.room_remove, name="room_remove"),
    path("api/conversations/", views.api_conversations, name="api_conversations"),
    path("api/conversations/<int:conversation_id>/mute/", views.api_conversation_mute, name="api_conversation_mute"),
    path("api/messages/<username:username>/", views.api_direct_messages, name="api_direct_messages"),
    path("api/rooms/<roomslug:slug>/messages/", views.api_room_messages, name="api_room_messages"),
]
