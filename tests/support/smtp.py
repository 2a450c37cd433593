"""A real SMTP server for the email tests (aiosmtpd, in a thread of the test process)."""

from __future__ import annotations

import asyncio
import email
import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.server import free_port


@dataclass
class Received:
    """One message as the server accepted it."""

    recipients: list[str]
    message: Message

    def part(self, mimetype: str) -> str:
        """The decoded body of the part with this content type ("" when there is none)."""
        for part in self.message.walk():
            if part.get_content_type() == mimetype:
                return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        return ""


class RecordingHandler:
    """Keeps every message; the first one to ``stall_for`` is recorded and then held, unanswered,
    until ``release`` is set (so its sender is mid-send when the test kills it)."""

    def __init__(self, stall_for: str | None = None) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.stall_for = stall_for
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        if self.stall_for in envelope.rcpt_tos and not self.stalled.is_set():
            self.stalled.set()
            await asyncio.to_thread(self.release.wait)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        """What arrived for one recipient."""
        with self.lock:
            return [item for item in self.received if address in item.recipients]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class SMTPServer:
    """``with SMTPServer(stall_for=...) as smtp:`` a server on a free port of 127.0.0.1."""

    def __init__(self, stall_for: str | None = None) -> None:
        self.handler = RecordingHandler(stall_for)
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handler.release.set()
        self.controller.stop()
