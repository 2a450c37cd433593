"""ASGI entry point: Django for HTTP, Channels for WebSockets.

The WebSocket stack is AllowedHostsOriginValidator(auth_middleware_stack(URLRouter)):
a foreign or missing Origin is refused before any consumer runs, then the
session cookie becomes ``scope["user"]`` and ``scope["session_key"]`` (one lookup on the
database thread pool: social/realtime/auth.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "social.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from social.proxy import TrustedProxyMiddleware  # noqa: E402
from social.realtime.auth import auth_middleware_stack  # noqa: E402
from social.routing import websocket_urlpatterns  # noqa: E402

if "*" in settings.ALLOWED_HOSTS:
    # The origin validator would accept any Origin: cross-site WebSocket hijacking.
    raise ImproperlyConfigured("ALLOWED_HOSTS must list real host names when WebSockets are served, not '*'.")

application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(auth_middleware_stack(URLRouter(websocket_urlpatterns))),
        }
    ),
    settings.TRUSTED_PROXIES,
)
