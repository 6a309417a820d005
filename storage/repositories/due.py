"""When the next due row falls due, whatever its table: the scheduler's one wake-up time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboxUpdate, OutboxMessage, Timer


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest of: a pending timer, an unsent outbox row (not before its time, nor before
    the lease of the sender holding it runs out), a stored update waiting for another try."""
    timer = select(func.min(Timer.due_at)).where(col(Timer.fired_at).is_(None))
    ready = case(
        (col(OutboxMessage.claimed_until) > col(OutboxMessage.not_before), col(OutboxMessage.claimed_until)),
        else_=col(OutboxMessage.not_before),
    )
    message = select(func.min(ready)).where(
        col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None)
    )
    retry = select(func.min(InboxUpdate.retry_at)).where(col(InboxUpdate.processed_at).is_(None))
    row = (
        await session.exec(
            select(timer.scalar_subquery(), message.scalar_subquery(), retry.scalar_subquery())
        )
    ).one()
    found = [_aware(value) for value in row if value is not None]
    return min(found) if found else None


def _aware(value: datetime | str) -> datetime:
    """SQLite hands back min() of a UTC column as text or a naive datetime: make it UTC-aware."""
    from storage.types import UTCDateTime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    result = UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    assert result is not None
    return result
