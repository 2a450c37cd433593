"""What every test socket client does with the frames it receives, whatever carries them."""

from __future__ import annotations

import asyncio
from typing import Any


class FrameReader:
    """Reads JSON frames through ``recv(timeout)`` (a real client or an in-process communicator)."""

    default_timeout: float

    async def recv(self, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    async def recv_type(self, frame_type: str, timeout: float | None = None) -> dict[str, Any]:
        """Skip frames until one of ``frame_type`` arrives (within ``timeout`` in all)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.default_timeout if timeout is None else timeout)
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if frame["type"] == frame_type:
                return frame

    async def until_ready(self, timeout: float | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Collect the resume replay; return (frames before ready, the ready frame)."""
        replay = []
        while True:
            frame = await self.recv(self.default_timeout if timeout is None else timeout)
            if frame["type"] == "ready":
                return replay, frame
            replay.append(frame)
