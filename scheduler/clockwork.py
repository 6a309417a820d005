"""APScheduler wakes the process at the next due time; the database is the truth.

Every deadline is a row: a ticket's timers, a dialog's deadlines, a deferred outbox message,
a stored update waiting for another try. An in-memory AsyncIOScheduler holds one date job at
the earliest of them; whoever commits a new due row tells ``wake`` (the port handed to the
handlers), which moves the job earlier when it must. When the job runs, the service's due
work runs (sweep, send, retry) until nothing is due, and the job moves to the next due time.
Nothing polls: when nothing is due, no transaction runs. Jobs run even when late (no misfire
grace): what fell due while the service was down runs right after start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from storage.due import Became

log = logging.getLogger("dutydesk.clockwork")
NEXT_DUE = "next-due"


class Clockwork:
    """The wake-up at the next due time."""

    def __init__(
        self,
        work: Callable[[], Awaitable[None]],
        next_due: Callable[[], Awaitable[datetime | None]],
        now: Callable[[], datetime],
        messages: Callable[[], None] = lambda: None,
    ) -> None:
        self._work, self._next_due, self._now, self._messages = work, next_due, now, messages
        self.scheduler = AsyncIOScheduler(job_defaults={"misfire_grace_time": None, "coalesce": True})
        self._next: datetime | None = None
        self._running = asyncio.Lock()
        self._again = False
        #: How many times the due work ran (for tests and benchmarks).
        self.runs = 0

    async def start(self) -> None:
        """Start waking up; the first run (what fell due while down) starts at once, in the
        background, so a large backlog does not hold up the start."""
        self.scheduler.start()
        self.scheduler.add_job(self._run, id="startup")

    def stop(self) -> None:
        """Stop waking up."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def wake(self, became: Became) -> None:
        """The port: a committed transaction made something due (messages now, a row at ``at``)."""
        if became.messages:
            self._messages()
        if became.at is not None:
            self.wake_at(became.at)

    def wake_at(self, at: datetime) -> None:
        """Make sure the due work runs at ``at`` (or earlier)."""
        if not self.scheduler.running:
            return
        if self._running.locked() and at <= self._now():
            self._again = True
            return
        if self._next is not None and self._next <= at and self.scheduler.get_job(NEXT_DUE):
            return
        self._next = at
        self.scheduler.add_job(self._run, "date", run_date=at, id=NEXT_DUE, replace_existing=True)

    async def _run(self) -> None:
        """Do the due work until nothing is due now; then wait for the next due time (a wake-up
        during a run makes it go round once more)."""
        if self._running.locked():
            self._again = True
            return
        due: datetime | None = None
        async with self._running:
            self._next = None
            while True:
                self._again = False
                self.runs += 1
                try:
                    await self._work()
                    due = await self._next_due()
                except Exception:
                    log.exception("the due work failed; trying again in a few seconds")
                    due = None
                    await asyncio.sleep(2.0)
                    self._again = True
                if not self._again and (due is None or due > self._now()):
                    break
        if due is not None:
            self.wake_at(due)
