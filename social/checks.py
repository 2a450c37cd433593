"""System checks for deployment mistakes Django does not catch itself."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


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


@register("security", deploy=True)
def trusted_proxies_set_in_production(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """In production daphne sits behind a reverse proxy, whose forwarded headers count only from TRUSTED_PROXIES."""
    if settings.DEBUG or settings.TRUSTED_PROXIES:
        return []
    return [
        Warning(
            "TRUSTED_PROXIES is empty.",
            hint=(
                "Behind a reverse proxy every client then appears as the proxy's address (one shared login "
                "throttle) and X-Forwarded-Proto is ignored (SECURE_SSL_REDIRECT redirects forever). Set it to "
                "the proxy's addresses, e.g. TRUSTED_PROXIES=127.0.0.1,::1 (deploy/env.example)."
            ),
            id="social.W002",
        )
    ]
