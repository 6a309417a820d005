"""APScheduler wakes the process; the database is the truth.

An in-memory AsyncIOScheduler runs the sweep periodically and, in between, once at the next
due time (a date job, moved whenever an earlier timer appears), so a timer fires within
moments of its time. Jobs run even when late (no misfire grace): a timer that fell due while
the service was down fires right after start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from storage.engine import SessionFactory, transaction
from storage.repositories.timers import next_due

log = logging.getLogger("dutydesk.clockwork")
NEXT_DUE = "next-due"


class Clockwork:
    """The periodic sweep, the wake-up at the next due time, and the other periodic work."""

    def __init__(
        self,
        sessions: SessionFactory,
        sweep: Callable[[], Awaitable[object]],
        interval: float = 5.0,
        extra: Callable[[], Awaitable[None]] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.sessions, self._sweep, self.interval, self._extra = sessions, sweep, interval, extra
        self._now = now or (lambda: datetime.now(UTC))
        self.scheduler = AsyncIOScheduler(job_defaults={"misfire_grace_time": None, "coalesce": True})
        self._next: datetime | None = None
        self._running = asyncio.Lock()
        self._again = False

    async def start(self) -> None:
        """Keep sweeping; the first sweep (what fell due while down) starts at once, in the
        background, so a large backlog does not hold up the start."""
        self.scheduler.add_job(self._run, "interval", seconds=self.interval, id="sweep", max_instances=1)
        if self._extra is not None:
            self.scheduler.add_job(self._extra, "interval", seconds=1.0, id="tick", max_instances=1)
        self.scheduler.add_job(self._run, id="startup")
        self.scheduler.start()

    def stop(self) -> None:
        """Stop waking up."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def reschedule(self) -> None:
        """Move the wake-up to the earliest pending timer (after any change that adds timers)."""
        async with transaction(self.sessions) as session:
            due = await next_due(session)
        if due is None or (self._next is not None and self._next <= due and self.scheduler.get_job(NEXT_DUE)):
            return
        self._next = due
        self.scheduler.add_job(self._run, "date", run_date=due, id=NEXT_DUE, replace_existing=True)

    async def _run(self) -> None:
        """Sweep until nothing is due; a wake-up during a sweep makes it go round once more
        (APScheduler would otherwise drop a job whose previous run is still going)."""
        if self._running.locked():
            self._again = True
            return
        async with self._running:
            while True:
                self._again = False
                try:
                    await self._sweep()
                except Exception:
                    log.exception("sweep failed")
                async with transaction(self.sessions) as session:
                    due = await next_due(session)
                if not self._again and (due is None or due > self._now()):
                    break
            self._next = None
        await self.reschedule()
