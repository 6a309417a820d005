"""Two processes on one PostgreSQL: a due time one of them learns reaches the other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.due_notices import DueNotices
from tests.conftest import Database


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # SQLite is one process
async def test_a_due_time_told_by_one_process_is_heard_by_the_other(db: Database) -> None:
    other_engine = db.new_engine()
    heard_here: list[datetime] = []
    heard_there: list[datetime] = []
    now = datetime.now(UTC)
    here = DueNotices(db.engine, heard_here.append, lambda: now)
    there = DueNotices(other_engine, heard_there.append, lambda: now)
    await here.start()
    await there.start()
    try:
        due = now + timedelta(minutes=5)
        here.tell(due)
        here.tell(due + timedelta(minutes=1))  # later than one already told: not sent again
        for _ in range(50):
            if heard_there:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert heard_there == [due] and heard_here == []  # not its own
    finally:
        await here.stop()
        await there.stop()
        await other_engine.dispose()
