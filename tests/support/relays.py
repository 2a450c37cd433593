"""Relay handlers for the channel-layer tests."""

from __future__ import annotations

from typing import Any


def broken_then_recording(layer: Any, broken_channel: str, good_channel: str) -> list[dict[str, Any]]:
    """Give the first channel a relay handler that raises, the second one that records; return the record."""

    def broken(event: dict[str, Any]) -> bool:
        raise RuntimeError("a bug in one socket")

    taken: list[dict[str, Any]] = []
    layer.relay_directly(broken_channel, broken)
    layer.relay_directly(good_channel, lambda event: taken.append(event) or True)
    return taken
