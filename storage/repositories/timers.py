"""Timer rows: what is due when, claimed atomically by whoever sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Conversation, Ticket, Timer


async def timers_of(session: AsyncSession, ticket_id: int) -> Sequence[Timer]:
    """Every timer of a ticket, fired or not."""
    query = select(Timer).where(Timer.ticket_id == ticket_id).order_by(col(Timer.due_at), col(Timer.id))
    return (await session.exec(query)).all()


async def claim_due(session: AsyncSession, now: datetime, limit: int = 500) -> list[Timer]:
    """Mark up to ``limit`` due timers of tickets, and as many of dialogs, fired and return them,
    oldest first.

    PostgreSQL: the candidate rows and their ticket (or conversation) are locked with FOR UPDATE
    SKIP LOCKED, so concurrent sweepers take disjoint sets, and a timer whose ticket is being
    changed right now waits for the next sweep (the change's commit wakes one) instead of the two
    transactions waiting for each other's rows. SQLite: the whole UPDATE runs under BEGIN
    IMMEDIATE (one writer at a time). Either way a row is claimed once; the caller fires it in
    the same transaction, so a crash before commit leaves it due.
    """
    due = (col(Timer.fired_at).is_(None), col(Timer.due_at) <= now)
    of_tickets = (
        select(Timer.id)
        .join(Ticket, col(Ticket.id) == col(Timer.ticket_id))
        .where(*due)
        .order_by(col(Timer.due_at), col(Timer.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=[col(Timer.id), col(Ticket.id)])
    )
    of_dialogs = (
        select(Timer.id)
        .join(Conversation, col(Conversation.id) == col(Timer.conversation_id))
        .where(*due)
        .order_by(col(Timer.due_at), col(Timer.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=[col(Timer.id), col(Conversation.id)])
    )
    rows: list[Timer] = []
    connection = await session.connection()
    for candidates in (of_tickets, of_dialogs):  # two statements: an OR of the two makes PostgreSQL scan
        statement = (
            update(Timer)
            .where(col(Timer.id).in_(candidates.scalar_subquery()))
            .values(fired_at=now)
            .returning(*Timer.__table__.c)  # type: ignore[attr-defined]
        )
        rows += [Timer(**row._mapping) for row in (await connection.execute(statement)).all()]  # read only
    return sorted(rows, key=lambda t: (t.due_at, t.id or 0))


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest pending timer's time."""
    return (await session.exec(select(func.min(Timer.due_at)).where(col(Timer.fired_at).is_(None)))).one()
