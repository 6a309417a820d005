"""Group-committed inbox writes: each update stored once, every caller told the truth."""

from __future__ import annotations

import asyncio

from sqlmodel import func, select

from bot.inbox_writer import InboxWriter
from handlers.clock import ManualClock
from storage.engine import transaction
from storage.enums import Channel
from storage.models import InboxUpdate
from tests.conftest import Database


async def test_a_burst_with_duplicates_stores_each_update_once(db: Database, clock: ManualClock) -> None:
    writer = InboxWriter(db.factory)
    keys = [f"k{n % 150}" for n in range(200)]  # 50 of them are redeliveries
    fresh = await asyncio.gather(
        *(writer.store(Channel.WECOM, key, {"n": n}, clock.now()) for n, key in enumerate(keys))
    )
    assert sum(fresh) == 150
    assert [key for key, new in zip(keys, fresh, strict=True) if new] == [f"k{n}" for n in range(150)]
    assert await writer.store(Channel.WECOM, "k1", {}, clock.now()) is False
    async with transaction(db.factory) as session:
        assert (await session.exec(select(func.count()).select_from(InboxUpdate))).one() == 150
