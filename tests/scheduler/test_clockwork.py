"""The clockwork on the real clock: it runs the due work when woken for a time, at that time,
goes round again while something is due, and does nothing at all while nothing is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from scheduler.clockwork import Clockwork
from storage.due import Became


class Table:
    """Due rows in memory: the work 'fires' those due; next_due is the earliest left."""

    def __init__(self) -> None:
        self.due: list[datetime] = []
        self.fired: list[tuple[datetime, datetime]] = []  # (due, fired at)
        self.messages = 0

    async def work(self) -> None:
        now = datetime.now(UTC)
        for at in [d for d in self.due if d <= now]:
            self.due.remove(at)
            self.fired.append((at, now))

    async def next_due(self) -> datetime | None:
        return min(self.due, default=None)

    def kick(self) -> None:
        self.messages += 1


async def test_it_wakes_at_the_due_time_and_is_quiet_otherwise() -> None:
    table = Table()
    clockwork = Clockwork(table.work, table.next_due, lambda: datetime.now(UTC), messages=table.kick)
    await clockwork.start()
    try:
        await asyncio.sleep(0.2)
        assert clockwork.runs == 1  # the start-up run: nothing was due
        soon = datetime.now(UTC) + timedelta(seconds=0.5)
        table.due += [soon, soon + timedelta(seconds=0.3)]
        clockwork.wake(Became(at=soon, messages=True))  # what a writer of due rows does
        assert table.messages == 1  # messages are sent at once, not at the due time
        await asyncio.sleep(1.3)
        assert [due for due, _ in table.fired] == [soon, soon + timedelta(seconds=0.3)]
        assert all(timedelta(0) <= fired - due < timedelta(seconds=0.5) for due, fired in table.fired)
        runs = clockwork.runs
        await asyncio.sleep(1.0)
        assert clockwork.runs == runs  # nothing due: no run, no query
    finally:
        clockwork.stop()


async def test_a_row_due_already_runs_at_once() -> None:
    table = Table()
    clockwork = Clockwork(table.work, table.next_due, lambda: datetime.now(UTC))
    await clockwork.start()
    try:
        await asyncio.sleep(0.1)
        past = datetime.now(UTC) - timedelta(minutes=5)  # fell due while the service was down
        table.due.append(past)
        clockwork.wake_at(past)
        await asyncio.sleep(0.3)
        assert [due for due, _ in table.fired] == [past]
    finally:
        clockwork.stop()
