"""One heartbeat scheduler per event loop, instead of a sleeping task per socket.

Every live socket beats every ``HEARTBEAT_SECONDS`` (spread by jitter). A task
per socket that sleeps between beats costs a task, a coroutine frame, a future
and a timer for each idle socket, all the time. The scheduler holds one heap
entry per socket instead and starts a short-lived task only for a beat that is
due. Beats run concurrently, at most ``MAX_CONCURRENT_BEATS`` at once, each for
at most ``HEARTBEAT_SECONDS``, so a slow beat delays neither the others nor the
schedule; a socket's next beat is scheduled once its current one has finished,
as with the old loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import weakref
from typing import Any, Protocol

from django.conf import settings

log = logging.getLogger(__name__)

# Beats of one event loop running at once; the others wait their turn.
MAX_CONCURRENT_BEATS = 64
# Each gap between beats is HEARTBEAT_SECONDS times a factor in this range.
JITTER = (0.8, 1.2)
# Beats due within this many seconds are started together. Event-loop timers are
# coarse (uvloop's are whole milliseconds and may fire a little early): without
# it the scheduler would wake again and again until a beat's exact time passed.
SLACK = 0.01


class Beating(Protocol):
    """What the scheduler needs of a socket."""

    channel_name: str

    async def beat(self) -> bool:
        """One heartbeat; False when the socket is done (closed) and needs no more."""


def next_gap() -> float:
    """Seconds until a socket's next beat."""
    return settings.REALTIME["HEARTBEAT_SECONDS"] * random.uniform(*JITTER)


class Scheduler:
    """The registered sockets of one event loop and the task that beats them when due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Entries [due, order, socket]; an unregistered socket's entry has socket None.
        self.heap: list[list[Any]] = []
        self.entries: dict[Beating, list[Any]] = {}
        self.running: dict[Beating, asyncio.Task[None]] = {}
        self.order = itertools.count()
        self.slots = asyncio.Semaphore(MAX_CONCURRENT_BEATS)
        self.task: asyncio.Task[None] | None = None
        self.wakeup: asyncio.Future[None] | None = None

    def register(self, socket: Beating) -> None:
        """Beat ``socket`` from one gap from now on, until it is unregistered."""
        if socket in self.entries:
            return
        entry = [self.loop.time() + next_gap(), next(self.order), socket]
        self.entries[socket] = entry
        self.push(entry)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self.run())

    def unregister(self, socket: Beating) -> None:
        """No more beats for ``socket``; a beat of it still running is cancelled."""
        entry = self.entries.pop(socket, None)
        if entry is not None:
            entry[2] = None
        beat = self.running.pop(socket, None)
        if beat is not None and beat is not asyncio.current_task():
            beat.cancel()
        if not self.entries and self.wakeup is not None and not self.wakeup.done():
            # Nothing left to beat: let ``run`` end.
            self.wakeup.set_result(None)

    def push(self, entry: list[Any]) -> None:
        heapq.heappush(self.heap, entry)
        if self.heap[0] is entry and self.wakeup is not None and not self.wakeup.done():
            # Due before the one the scheduler sleeps towards.
            self.wakeup.set_result(None)

    async def run(self) -> None:
        """Start every beat that is due, sleeping until the next one; ends when no socket is left."""
        while self.entries:
            while self.heap and self.heap[0][2] is None:
                heapq.heappop(self.heap)
            if not self.heap:
                # Every registered socket is beating right now; one of them re-queues.
                await self.sleep(None)
                continue
            due = self.heap[0][0]
            if due > self.loop.time() + SLACK:
                await self.sleep(due)
                continue
            entry = heapq.heappop(self.heap)
            await self.slots.acquire()
            socket = entry[2]
            if socket is None:
                self.slots.release()
                continue
            task = self.loop.create_task(self.beat(socket, entry))
            # Given back when the task ends, also for one cancelled before it began to run.
            task.add_done_callback(self.give_back_slot)
            self.running[socket] = task
        # Only unregistered sockets' entries can be left.
        self.heap.clear()

    async def sleep(self, until: float | None) -> None:
        """Until ``until`` (loop time; None: forever) or until an earlier entry is pushed."""
        self.wakeup = self.loop.create_future()
        timer = None if until is None else self.loop.call_at(until, _wake, self.wakeup)
        try:
            await self.wakeup
        finally:
            if timer is not None:
                timer.cancel()
            self.wakeup = None

    def give_back_slot(self, task: asyncio.Task[None]) -> None:
        self.slots.release()

    async def beat(self, socket: Beating, entry: list[Any]) -> None:
        """Run one beat (at most HEARTBEAT_SECONDS); failures are logged and the socket beats again next time."""
        again = True
        limit = settings.REALTIME["HEARTBEAT_SECONDS"]
        try:
            # A beat stuck on a lock or an outage must not hold its slot (and so the
            # other sockets' beats) for good; it is tried again next time.
            async with asyncio.timeout(limit):
                again = await socket.beat()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("heartbeat of %s took more than %s s", socket.channel_name, limit)
        except Exception:
            log.warning("heartbeat failed for %s", socket.channel_name, exc_info=True)
        finally:
            if self.running.get(socket) is asyncio.current_task():
                del self.running[socket]
        if not again:
            self.unregister(socket)
        elif entry[2] is not None:
            entry[0] = self.loop.time() + next_gap()
            entry[1] = next(self.order)
            self.push(entry)
            if self.task is None or self.task.done():
                self.task = self.loop.create_task(self.run())


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Scheduler] = weakref.WeakKeyDictionary()


def scheduler() -> Scheduler:
    """This event loop's scheduler (tests run several loops)."""
    loop = asyncio.get_running_loop()
    found = _schedulers.get(loop)
    if found is None:
        found = _schedulers[loop] = Scheduler(loop)
    return found


def register(socket: Beating) -> None:
    """Start beating a live socket (see the module docstring)."""
    scheduler().register(socket)


def unregister(socket: Beating) -> None:
    """Stop beating a socket (closed); idempotent."""
    scheduler().unregister(socket)
