"""``{% bell_state as bell %}``: the bell's first unread count and resume point."""

from typing import Any

from django import template

from notifications import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def bell_state(context: dict[str, Any]) -> dict[str, int | None]:
    """Unread count and newest notification id of the logged-in user, rendered into the page."""
    user_id = context["user"].pk
    return {"unread": selectors.unread_count(user_id=user_id), "last_id": selectors.newest_id(user_id=user_id)}
