"""What-if settings: the app's own settings plus the tuning the bench suggests.

Not used by default. ``python -m bench.run --app-settings bench.whatif_settings`` measures how
much these changes would buy before anyone edits the app:

- Redis pool options for channels-redis: redis-py 8 defaults to ``socket_timeout=5`` (equal
  to channels-redis' 5 s BZPOPMIN, so an idle ``receive()`` raises TimeoutError and its consumer
  dies with 1011) and to a 100-connection asyncio pool (bursts of group_add/discard fail with
  "Too many connections").
"""

from __future__ import annotations

from social.settings import *  # noqa: F403
from social.settings import CHANNEL_LAYERS

for _layer in CHANNEL_LAYERS.values():
    _config = _layer.get("CONFIG", {})
    if "hosts" in _config:
        _config["hosts"] = [
            {"address": host, "socket_timeout": None, "max_connections": 10_000} if isinstance(host, str) else host
            for host in _config["hosts"]
        ]
