"""Four writers changing one ticket at once lose no update, on either engine.

Each writer has its own engine (its own connections, as a second process would), and every
change is a read-modify-write of the ticket (revision += 1) plus a timeline row.
"""

from __future__ import annotations

import asyncio

from sqlmodel import func, select

from handlers.tickets.service import TicketService
from storage.engine import create_session_factory, transaction
from storage.models import TicketEvent
from tests.conftest import Desk

WRITERS = 4
CHANGES = 25


async def test_four_concurrent_writers_lose_no_update(desk: Desk) -> None:
    ticket_id = await desk.report(level=2)
    before = (await desk.ticket(ticket_id)).revision
    authors = [desk.world.engineer, desk.world.backup_engineer, desk.world.supervisor, desk.world.reporter]
    engines = [desk.db.new_engine() for _ in range(WRITERS)]

    async def writer(number: int) -> None:
        factory = create_session_factory(engines[number])
        for change in range(CHANGES):
            async with transaction(factory) as session:
                service = TicketService(session, desk.policies, desk.clock)
                await service.note(ticket_id, authors[number], f"writer {number} change {change}")

    try:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    finally:
        for engine in engines:
            await engine.dispose()

    ticket = await desk.ticket(ticket_id)
    assert ticket.revision == before + WRITERS * CHANGES
    async with transaction(desk.db.factory) as session:
        notes = (
            await session.exec(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "note")
            )
        ).one()
    assert notes == WRITERS * CHANGES
