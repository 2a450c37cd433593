"""The notification settings form (/settings/notifications/)."""

from typing import Any

from django import forms

from notifications.selectors import MAX_EMAIL_DELAY_MINUTES

EMAIL_LABELS = {
    "comment": "Comments on my posts",
    "reply": "Replies to my comments",
    "mention": "Mentions of me",
    "system": "Announcements and invitations",
    "direct": "Direct messages",
}


class PreferencesForm(forms.Form):
    """Per kind whether it is emailed, and after how long unread."""

    email_delay_minutes = forms.IntegerField(
        label="Email me about what is still unread after (minutes; 0 turns email off)",
        min_value=0,
        max_value=MAX_EMAIL_DELAY_MINUTES,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in EMAIL_LABELS.items():
            self.fields[f"email_{kind}"] = forms.BooleanField(label=label, required=False)

    @classmethod
    def from_preferences(cls, preferences: dict[str, Any]) -> "PreferencesForm":
        """A form showing the user's current preferences."""
        initial = {f"email_{kind}": on for kind, on in preferences["email"].items()}
        return cls(initial={**initial, "email_delay_minutes": preferences["email_delay_minutes"]})

    def preferences(self) -> dict[str, Any]:
        """The cleaned form as an API-shaped change."""
        return {
            "email": {kind: self.cleaned_data[f"email_{kind}"] for kind in EMAIL_LABELS},
            "email_delay_minutes": self.cleaned_data["email_delay_minutes"],
        }

    def email_fields(self) -> list[forms.BoundField]:
        """The per-kind checkboxes, in order."""
        return [self[f"email_{kind}"] for kind in EMAIL_LABELS]
