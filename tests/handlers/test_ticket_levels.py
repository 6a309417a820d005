"""The client's word on the level survives the classification dialogue; late rises are no-ops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.tickets.service import TicketService
from storage.enums import TicketStatus
from tests.conftest import Desk
from tests.handlers.test_ticket_service import timeline

H = timedelta(hours=1)


async def test_the_supervisors_level_survives_the_reporters_answers(desk: Desk) -> None:
    w = desk.world
    t = await desk.report(level=None)
    await desk.run(lambda s: s.set_level(t, w.supervisor, 1))
    await desk.run(lambda s: s.classify(t, w.reporter, 3, confirmed=True))
    ticket = await desk.ticket(t)
    assert (ticket.status, ticket.level, ticket.level_set_by, ticket.level_confirmed) == (
        TicketStatus.CLASSIFIED,
        1,
        "supervisor",
        True,
    )
    last = (await timeline(desk, t))[-1]
    assert (last.kind, last.old, last.new) == ("classify", "reported", "classified")
    assert last.detail == {"answered_level": 3, "confirmed": True, "kept_level_set_by": "supervisor"}


async def test_the_window_end_does_not_overwrite_the_reporters_level(desk: Desk) -> None:
    w = desk.world
    t = await desk.report(level=None)
    await desk.run(lambda s: s.set_level(t, w.reporter, 1))
    await desk.run(lambda s: s.classify(t, None, 2, confirmed=False))
    ticket = await desk.ticket(t)
    assert (ticket.status, ticket.level, ticket.level_set_by, ticket.level_confirmed) == (
        TicketStatus.CLASSIFIED,
        1,
        "reporter",
        True,
    )


@pytest.mark.parametrize("ending", ["resolve", "cancel"])
async def test_a_rise_after_the_ticket_ended_is_a_no_op(desk: Desk, ending: str) -> None:
    w = desk.world
    t = await desk.report(level=1)
    await desk.run(lambda s: s.acknowledge(t, w.engineer))

    async def end(service: TicketService) -> object:
        if ending == "resolve":
            return await service.resolve(t, w.engineer)
        return await service.cancel(t, w.reporter, "误报")

    await desk.run(end)
    before = (await desk.ticket(t)).revision, len(await timeline(desk, t))
    desk.clock.advance(13 * H)
    assert await desk.run(lambda s: s.apply_rise(t)) is None
    assert ((await desk.ticket(t)).revision, len(await timeline(desk, t))) == before
