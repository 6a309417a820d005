"""The inbox: platform updates stored (deduplicated) before they are acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Channel
from storage.models import InboxUpdate


async def store(
    session: AsyncSession,
    channel: Channel,
    key: str,
    payload: dict[str, Any],
    now: datetime,
    retry_at: datetime | None = None,
) -> bool:
    """Keep an update unless its key was seen before; True when it is new. ``retry_at``: when
    the sweep takes it up if it is still unprocessed then (its handler died, say)."""
    connection = await session.connection()
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(InboxUpdate)
        .values(
            channel=channel.value, key=key, payload=payload, received_at=now, retry_at=retry_at, attempts=0
        )
        .on_conflict_do_nothing(index_elements=["channel", "key"])
    )
    outcome = await connection.execute(statement)
    return bool(outcome.rowcount)


def _unprocessed(channel: Channel, key: str) -> tuple[ColumnElement[bool], ...]:
    return (
        col(InboxUpdate.channel) == channel,
        col(InboxUpdate.key) == key,
        col(InboxUpdate.processed_at).is_(None),
    )


async def claim(session: AsyncSession, channel: Channel, key: str, now: datetime) -> bool:
    """Mark a stored update processed unless someone already did; True when it is ours.

    One UPDATE ... RETURNING: concurrent claimers of the same update get one winner, and the
    mark is committed with the handling (same transaction) or not at all.
    """
    statement = (
        update(InboxUpdate)
        .where(*_unprocessed(channel, key))
        .values(processed_at=now, attempts=InboxUpdate.attempts + 1)
        .returning(col(InboxUpdate.id))
    )
    outcome = await (await session.connection()).execute(statement)
    return outcome.first() is not None


async def unprocessed(session: AsyncSession, channel: Channel) -> Sequence[InboxUpdate]:
    """Updates stored but not processed (a crash or a restart came in between), oldest first."""
    query = select(InboxUpdate).where(InboxUpdate.channel == channel, col(InboxUpdate.processed_at).is_(None))
    return (await session.exec(query.order_by(col(InboxUpdate.id)))).all()


async def due_for_retry(
    session: AsyncSession, now: datetime, again_at: datetime, limit: int = 200
) -> Sequence[InboxUpdate]:
    """Unprocessed updates whose retry time has come, oldest first; their next retry time moves
    to ``again_at`` (so a second sweeper does not take them too)."""
    query = (
        select(InboxUpdate)
        .where(col(InboxUpdate.processed_at).is_(None), col(InboxUpdate.retry_at) <= now)
        .order_by(col(InboxUpdate.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.exec(query)).all()
    if rows:
        await (await session.connection()).execute(
            update(InboxUpdate).where(col(InboxUpdate.id).in_([r.id for r in rows])).values(retry_at=again_at)
        )
    return rows


async def retry_later(session: AsyncSession, channel: Channel, key: str, at: datetime, error: str) -> None:
    """A handling attempt failed for a passing reason: count it and try again at ``at``."""
    statement = (
        update(InboxUpdate)
        .where(*_unprocessed(channel, key))
        .values(retry_at=at, attempts=InboxUpdate.attempts + 1, error=error[:500])
    )
    await (await session.connection()).execute(statement)


async def give_up(session: AsyncSession, channel: Channel, key: str, now: datetime, error: str) -> None:
    """Record that handling an update failed, so a restart does not retry it forever."""
    statement = (
        update(InboxUpdate)
        .where(*_unprocessed(channel, key))
        .values(processed_at=now, attempts=InboxUpdate.attempts + 1, error=error[:500])
    )
    await (await session.connection()).execute(statement)
