"""Reminders, escalations and level rises at the policy's times, with who hears each (both engines)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, func, select

from scheduler.sweep import Sweeper
from storage.engine import create_session_factory, transaction
from storage.enums import Clock
from storage.models import TicketEvent, Timer
from storage.repositories.tickets import get_ticket
from storage.repositories.timers import claim_due
from tests.conftest import Desk
from tests.scheduler.conftest import Inboxes

M, H = timedelta(minutes=1), timedelta(hours=1)


@pytest.fixture
def sweeper(desk: Desk, inboxes: Inboxes) -> Sweeper:
    return Sweeper(desk.db.factory, desk.policies, desk.clock)


async def at(desk: Desk, sweeper: Sweeper, offset: timedelta) -> int:
    """Move the clock to START + offset and sweep."""
    desk.clock.set(desk.world.site.created_at + offset)
    return await sweeper.sweep()


async def events(desk: Desk, ticket_id: int, kind: str) -> list[dict[str, object]]:
    async with transaction(desk.db.factory) as session:
        rows = await session.exec(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)
            .order_by(col(TicketEvent.id))
        )
        return [row.detail for row in rows.all()]


async def test_an_unacknowledged_level_one_fault_is_escalated_at_the_policy_times(
    desk: Desk, sweeper: Sweeper, inboxes: Inboxes
) -> None:
    w = desk.world
    t = await desk.report(level=1)
    assert await at(desk, sweeper, 4 * M + 59 * timedelta(seconds=1)) == 0
    await at(desk, sweeper, 5 * M)
    got = await inboxes.take()
    assert set(got) == {w.engineer}  # nobody took it: the engineer on call (on site, working hours)
    assert got[w.engineer] == ["⏰ 工单 #1（一级）响应还剩5分钟，截止 12-01 09:10"]
    await at(desk, sweeper, 8 * M)
    assert (await inboxes.take())[w.engineer] == ["⏰ 工单 #1（一级）响应还剩2分钟，截止 12-01 09:10"]
    await at(desk, sweeper, 10 * M)
    got = await inboxes.take()
    assert set(got) == {w.backup_engineer, w.supervisor}  # the backup and the supervisor, no manager
    assert got[w.supervisor] == ["⚠️ 工单 #1（一级）响应已超时，截止时间 12-01 09:10"]
    await at(desk, sweeper, 2 * H)  # restore at 50 %
    assert (await inboxes.take()) == {w.engineer: ["⏰ 工单 #1（一级）恢复还剩2小时，截止 12-01 13:00"]}
    await at(desk, sweeper, 4 * H)  # the 80 % reminder (3 h 12 m) was not swept in time: the breach speaks
    got = await inboxes.take()
    assert got[w.supervisor][-1] == got[w.manager][-1] == "⚠️ 工单 #1（一级）恢复已超时，截止时间 12-01 13:00"
    await at(desk, sweeper, 6 * H)  # resolve at 50 %
    assert (await inboxes.take())[w.engineer] == ["⏰ 工单 #1（一级）解决还剩6小时，截止 12-01 21:00"]
    await at(desk, sweeper, 12 * H)
    got = await inboxes.take()
    assert "⚠️ 工单 #1（一级）解决已超时，截止时间 12-01 21:00" in got[w.manager]
    assert "‼️ 一级工单 #1 未按时解决，请外包单位主管介入" in got[w.manager]
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.manager_flagged) == (1, True)
    assert [e["clock"] for e in await events(desk, t, "breach")] == ["response", "restore", "resolve"]
    assert len(await events(desk, t, "reminder")) == 4
    assert await at(desk, sweeper, 30 * H) == 0  # nothing left, nothing twice


async def test_acknowledging_stops_the_response_reminders(
    desk: Desk, sweeper: Sweeper, inboxes: Inboxes
) -> None:
    w = desk.world
    t = await desk.report(level=1)
    desk.clock.advance(3 * M)
    await desk.run(lambda s: s.acknowledge(t, w.engineer))
    await at(desk, sweeper, 11 * M)
    assert (await inboxes.take()) == {}
    await at(desk, sweeper, 2 * H)  # restore at 50 %: only the engineer who took it
    assert (await inboxes.take()) == {w.engineer: ["⏰ 工单 #1（一级）恢复还剩2小时，截止 12-01 13:00"]}
    async with transaction(desk.db.factory) as session:
        pending = (await session.exec(select(Timer).where(col(Timer.fired_at).is_(None)))).all()
    assert {(p.kind, p.clock) for p in pending} == {
        ("reminder", "restore"),
        ("breach", "restore"),
        ("reminder", "resolve"),
        ("breach", "resolve"),
    }


async def test_the_rise_chain_three_two_one_restarts_the_clocks(
    desk: Desk, sweeper: Sweeper, inboxes: Inboxes
) -> None:
    w = desk.world
    t = await desk.report(level=3)
    await desk.run(lambda s: s.acknowledge(t, w.engineer))
    desk.clock.advance(H)
    await desk.run(lambda s: s.arrive(t, w.engineer))  # level 3 resolves 48 h from arrival
    await at(desk, sweeper, 49 * H)
    got = await inboxes.take()
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.clocks_started_at) == (2, desk.clock.now())
    for person in (w.reporter, w.engineer, w.supervisor):
        assert any(m.startswith("⬆️ 工单 #1 未按时解决，已由三级升为二级") for m in got[person]), person
    assert w.manager not in got
    # Level 2 clocks run from the rise: restore 8 h, resolve 24 h.
    await at(desk, sweeper, 49 * H + 8 * H)
    assert "⚠️ 工单 #1（二级）恢复已超时，截止时间 12-03 18:00" in (await inboxes.take())[w.supervisor]
    await at(desk, sweeper, 49 * H + 24 * H)
    got = await inboxes.take()
    assert (await desk.ticket(t)).level == 1
    assert any(m.startswith("⬆️ 工单 #1 未按时解决，已由二级升为一级") for m in got[w.manager])
    await at(desk, sweeper, 49 * H + 24 * H + 12 * H)
    assert "‼️ 一级工单 #1 未按时解决，请外包单位主管介入" in (await inboxes.take())[w.manager]
    assert [(e.get("restarts_clocks"), e.get("flag_manager")) for e in await events(desk, t, "rise")] == [
        (True, False),
        (True, False),
        (False, True),
    ]


async def test_after_a_restart_every_overdue_timer_fires_once(desk: Desk, inboxes: Inboxes) -> None:
    t = await desk.report(level=1)
    desk.clock.advance(13 * H)  # the service was down all along
    fresh = Sweeper(desk.db.factory, desk.policies, desk.clock)
    assert await fresh.sweep() == 9
    assert await fresh.sweep() == 0
    assert len(await events(desk, t, "breach")) == 3
    assert len(await events(desk, t, "reminder")) == 0  # a reminder after its breach says nothing


async def test_three_sweepers_claim_a_thousand_timers_exactly_once(desk: Desk) -> None:
    t = await desk.report(level=2)
    async with transaction(desk.db.factory) as session:
        for n in range(1000):
            session.add(
                Timer(ticket_id=t, kind="test", clock=Clock.RESPONSE, due_at=desk.clock.now() - n * M)
            )
    engines = [desk.db.new_engine() for _ in range(3)]
    claimed: list[list[int]] = [[], [], []]

    async def sweeper(number: int) -> None:
        factory = create_session_factory(engines[number])
        while True:
            async with transaction(factory) as session:
                batch = await claim_due(session, desk.clock.now(), 50)
            if not batch:
                return
            claimed[number] += [timer.id or 0 for timer in batch if timer.kind == "test"]

    try:
        await asyncio.gather(*(sweeper(n) for n in range(3)))
    finally:
        for engine in engines:
            await engine.dispose()
    every = [i for part in claimed for i in part]
    assert len(every) == len(set(every)) == 1000
    fired = (
        select(func.count()).select_from(Timer).where(Timer.kind == "test", col(Timer.fired_at).is_not(None))
    )
    async with transaction(desk.db.factory) as session:
        assert (await session.exec(fired)).one() == 1000


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # SQLite has one writer at a time
async def test_a_sweep_passes_over_a_ticket_being_changed_and_fires_it_next_time(
    desk: Desk, sweeper: Sweeper, inboxes: Inboxes
) -> None:
    """PostgreSQL: a sweep does not wait on (or deadlock with) a transaction holding the ticket."""
    t = await desk.report(level=1)
    desk.clock.advance(10 * M)  # the response reminders and breach are due
    other = desk.db.new_engine()
    try:
        async with transaction(create_session_factory(other)) as session:
            assert await get_ticket(session, t, for_update=True) is not None
            assert await asyncio.wait_for(sweeper.sweep(), 5) == 0
        assert await sweeper.sweep() == 3
    finally:
        await other.dispose()
    assert len(await events(desk, t, "breach")) == 1
    assert set(await inboxes.take()) == {desk.world.backup_engineer, desk.world.supervisor}
