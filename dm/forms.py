"""Forms of the messaging pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from dm.models import Conversation
from social import bounds


class UsernameForm(forms.Form):
    """A user to message or invite, by username."""

    username = forms.CharField(label="Username", max_length=150, strip=True)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_username(self) -> Any:
        username = self.cleaned_data["username"]
        other = get_user_model().objects.filter(username=username, is_active=True).first()
        if other is None:
            raise forms.ValidationError("There is no user with that name.")
        if other.pk == self.user.pk:
            raise forms.ValidationError("That is you.")
        return other


class RoomCreateForm(forms.Form):
    """A new chat room."""

    name = forms.CharField(label="Name", max_length=bounds.ROOM_NAME_CHARS, strip=True)
    slug = forms.SlugField(
        label="Address",
        max_length=bounds.ROOM_SLUG_CHARS,
        help_text="Lowercase letters, digits and hyphens; the room lives at /rooms/<address>/.",
    )
    private = forms.BooleanField(label="Private (members only, by invitation)", required=False)

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"].lower()
        if Conversation.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A room with this address already exists.")
        return slug
