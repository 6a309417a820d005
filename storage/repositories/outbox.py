"""The outbox: every outgoing message is a row before anyone tries to send it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Channel
from storage.models import OutboxMessage


def pending_filter(now: datetime) -> tuple[object, ...]:
    """Rows that may be sent now: unsent, not failed, due, and not leased by a live sender."""
    return (
        col(OutboxMessage.sent_at).is_(None),
        col(OutboxMessage.failed_at).is_(None),
        col(OutboxMessage.not_before) <= now,
        or_(col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) < now),
    )


async def enqueue(session: AsyncSession, rows: Iterable[OutboxMessage]) -> None:
    """Add messages to the outbox (in the caller's transaction)."""
    session.add_all(list(rows))
    await session.flush()


async def claim(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta
) -> Sequence[OutboxMessage]:
    """Lease up to ``limit`` sendable rows (oldest first) to this sender until now + lease.

    A sender that dies mid-send lets its lease run out and another one takes the rows over.
    """
    candidates = (
        select(OutboxMessage.id)
        .where(*pending_filter(now))  # type: ignore[arg-type]
        .order_by(col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(candidates.scalar_subquery()))
        .values(claimed_until=now + lease)
        .returning(col(OutboxMessage.id))
    )
    ids = [row[0] for row in (await (await session.connection()).execute(statement)).all()]
    if not ids:
        return []
    query = select(OutboxMessage).where(col(OutboxMessage.id).in_(ids)).order_by(col(OutboxMessage.id))
    return (await session.exec(query.execution_options(populate_existing=True))).all()


async def pending_count(session: AsyncSession, channel: Channel | None = None) -> int:
    """Messages not yet sent nor failed."""
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
    )
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    return (await session.exec(query)).one()


async def next_attempt(session: AsyncSession) -> datetime | None:
    """When the earliest deferred message may be sent."""
    query = (
        select(OutboxMessage.not_before)
        .where(col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
        .order_by(col(OutboxMessage.not_before))
        .limit(1)
    )
    return (await session.exec(query)).first()


async def settle(session: AsyncSession, ids: Sequence[int], **values: object) -> None:
    """Record the outcome of a send for these rows (sent_at / not_before / failed_at ...)."""
    if ids:
        statement = update(OutboxMessage).where(col(OutboxMessage.id).in_(list(ids))).values(**values)
        await (await session.connection()).execute(statement)
