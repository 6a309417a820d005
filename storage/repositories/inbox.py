"""The inbox: platform updates stored (deduplicated) before they are acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Channel
from storage.models import InboxUpdate


async def store(
    session: AsyncSession, channel: Channel, key: str, payload: dict[str, Any], now: datetime
) -> bool:
    """Keep an update unless its key was seen before; True when it is new."""
    connection = await session.connection()
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(InboxUpdate)
        .values(channel=channel.value, key=key, payload=payload, received_at=now, attempts=0)
        .on_conflict_do_nothing(index_elements=["channel", "key"])
    )
    outcome = await connection.execute(statement)
    return bool(outcome.rowcount)


async def claim(session: AsyncSession, channel: Channel, key: str) -> InboxUpdate | None:
    """The stored update if nobody has processed it yet (locked for this transaction)."""
    query = (
        select(InboxUpdate)
        .where(
            InboxUpdate.channel == channel, InboxUpdate.key == key, col(InboxUpdate.processed_at).is_(None)
        )
        .with_for_update()
    )
    return (await session.exec(query)).first()


async def unprocessed(session: AsyncSession, channel: Channel) -> Sequence[InboxUpdate]:
    """Updates stored but not processed (a crash or a restart came in between), oldest first."""
    query = select(InboxUpdate).where(InboxUpdate.channel == channel, col(InboxUpdate.processed_at).is_(None))
    return (await session.exec(query.order_by(col(InboxUpdate.id)))).all()


async def mark_processed(
    session: AsyncSession, row: InboxUpdate, now: datetime, error: str | None = None
) -> None:
    """Record that the update was handled (with the error, if handling it failed)."""
    row.processed_at = now
    row.attempts += 1
    row.error = error[:500] if error else None
    session.add(row)
