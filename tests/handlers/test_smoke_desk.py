"""The fixtures themselves work on both engines (a guard for every other test)."""

from tests.conftest import Desk


async def test_a_reported_ticket_has_its_three_deadlines(desk: Desk) -> None:
    ticket_id = await desk.report(level=1)
    ticket = await desk.ticket(ticket_id)
    assert ticket.status == "classified"
    assert ticket.reported_at.tzinfo is not None
