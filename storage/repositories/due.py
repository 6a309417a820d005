"""When the next due row falls due, whatever its table: the scheduler's one wake-up time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboxUpdate, OutboxMessage, Timer
from storage.types import UTCDateTime


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest of: a pending timer, an unsent outbox row (not before its time, nor before
    the lease of the sender holding it runs out), a stored update waiting for another try.
    Each part is the minimum of one partial index."""
    pending = (col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
    timer = select(func.min(Timer.due_at)).where(col(Timer.fired_at).is_(None))
    waiting = select(func.min(OutboxMessage.not_before)).where(
        *pending, col(OutboxMessage.claimed_until).is_(None)
    )
    # A row a sender holds is due again when its lease runs out (its sender may have died).
    leased = select(func.min(OutboxMessage.claimed_until)).where(
        *pending, col(OutboxMessage.claimed_until).is_not(None)
    )
    retry = select(func.min(InboxUpdate.retry_at)).where(col(InboxUpdate.processed_at).is_(None))
    earliest = select(*(part.scalar_subquery() for part in (timer, waiting, leased, retry)))
    row = (await session.exec(earliest)).one()
    found = [_aware(value) for value in row if value is not None]
    return min(found) if found else None


def _aware(value: datetime | str) -> datetime:
    """SQLite may hand back min() of a UTC column as text or a naive datetime: make it UTC-aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    result = UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    assert result is not None
    return result
