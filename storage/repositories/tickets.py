"""Tickets, their timelines and their deadline rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Clock, TicketStatus
from storage.models import Deadline, FaultReport, Ticket, TicketEvent

#: Statuses in which a ticket still needs work or the client's sign-off.
OPEN_STATUSES = frozenset(
    {
        TicketStatus.REPORTED,
        TicketStatus.CLASSIFIED,
        TicketStatus.ACKNOWLEDGED,
        TicketStatus.ON_SITE,
        TicketStatus.RESTORED,
    }
)


async def get_ticket(session: AsyncSession, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
    """A ticket by id; ``for_update`` locks its row until the transaction ends (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already serialises writers)."""
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def lock_tickets(session: AsyncSession, ids: Iterable[int]) -> dict[int, Ticket]:
    """Several tickets by id, in one query, locked as ``get_ticket(for_update=True)`` locks one."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(Ticket).where(col(Ticket.id).in_(wanted)).order_by(col(Ticket.id)).with_for_update()
    rows = await session.exec(query.execution_options(populate_existing=True))
    return {ticket.id: ticket for ticket in rows.all() if ticket.id is not None}


async def list_tickets(
    session: AsyncSession,
    site_id: int | None = None,
    *,
    open_only: bool = False,
    statuses: Iterable[TicketStatus] | None = None,
) -> Sequence[Ticket]:
    """Tickets, newest first, optionally of one site and only the open ones (or only those of
    ``statuses``)."""
    query = select(Ticket)
    if site_id is not None:
        query = query.where(Ticket.site_id == site_id)
    if open_only:
        statuses = OPEN_STATUSES
    if statuses is not None:
        query = query.where(col(Ticket.status).in_(list(statuses)))
    return (await session.exec(query.order_by(col(Ticket.reported_at).desc(), col(Ticket.id).desc()))).all()


async def events_of(session: AsyncSession, ticket_id: int) -> Sequence[TicketEvent]:
    """A ticket's timeline in order."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    return (await session.exec(query.order_by(col(TicketEvent.at), col(TicketEvent.id)))).all()


async def deadlines_of(session: AsyncSession, ticket_id: int) -> dict[Clock, Deadline]:
    """A ticket's deadline rows by clock."""
    rows = (await session.exec(select(Deadline).where(Deadline.ticket_id == ticket_id))).all()
    return {Clock(row.clock): row for row in rows}


async def past_fixes(
    session: AsyncSession, site_id: int, *, asset_id: int | None, subsystem_id: int | None, limit: int = 3
) -> Sequence[tuple[Ticket, FaultReport]]:
    """The latest fault reports of the asset (or, without one, of the subsystem) at a site."""
    query = (
        select(Ticket, FaultReport)
        .join(FaultReport, col(FaultReport.ticket_id) == col(Ticket.id))
        .where(Ticket.site_id == site_id)
    )
    if asset_id is not None:
        query = query.where(Ticket.asset_id == asset_id)
    elif subsystem_id is not None:
        query = query.where(Ticket.subsystem_id == subsystem_id)
    else:
        return []
    query = query.order_by(col(Ticket.reported_at).desc()).limit(limit)
    return [(ticket, report) for ticket, report in (await session.exec(query)).all()]
