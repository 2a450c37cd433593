"""System checks for deployment mistakes Django does not catch itself."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register("security")
def allowed_hosts_not_wildcard(app_configs: Any, **kwargs: Any) -> list[Error]:
    """``'*'`` in ALLOWED_HOSTS turns off WebSocket origin checks (cross-site hijacking)."""
    if "*" in settings.ALLOWED_HOSTS:
        return [
            Error(
                "ALLOWED_HOSTS contains a wildcard.",
                hint="AllowedHostsOriginValidator trusts every Origin it matches; list the real host names.",
                id="social.E001",
            )
        ]
    return []
