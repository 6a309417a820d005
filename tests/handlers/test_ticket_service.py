"""The ticket service on both engines, one transaction per operation as the bot runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from handlers.clock import ManualClock
from handlers.sla.rules import Rise
from handlers.tickets.machine import Forbidden, IllegalTransition, TicketRuleError
from handlers.tickets.service import TicketService
from storage.engine import transaction
from storage.enums import Clock
from storage.models import Deadline, TicketEvent
from storage.repositories.sites import subsystems
from storage.repositories.tickets import deadlines_of, events_of, list_tickets
from tests.conftest import START, Desk, World

M, H = timedelta(minutes=1), timedelta(hours=1)
RESPONSE, RESTORE, RESOLVE = Clock.RESPONSE, Clock.RESTORE, Clock.RESOLVE
#: The seed's table, section 2(4): response, restore and resolve limits of levels 1 and 2.
LIMITS = {1: (10 * M, 4 * H, 12 * H), 2: (30 * M, 8 * H, 24 * H)}

Run = Callable[[TicketService], Awaitable[object]]
Op = Callable[[TicketService, World, int], Awaitable[object]]  # (service, world, ticket id)
ActorOp = Callable[[TicketService, int, int, World], Awaitable[object]]  # (.., ticket id, actor, ..)
Step = tuple[str, str | None, str | None, int | None]


def due(start: datetime, level: int) -> dict[Clock, datetime]:
    """The due times of a level-1 or level-2 ticket whose clocks started at ``start``."""
    return dict(zip((RESPONSE, RESTORE, RESOLVE), (start + limit for limit in LIMITS[level]), strict=True))


async def timeline(desk: Desk, ticket_id: int) -> list[TicketEvent]:
    async with transaction(desk.db.factory) as session:
        return list(await events_of(session, ticket_id))


async def deadlines(desk: Desk, ticket_id: int) -> dict[Clock, Deadline]:
    async with transaction(desk.db.factory) as session:
        return await deadlines_of(session, ticket_id)


async def dues(desk: Desk, ticket_id: int) -> dict[Clock, datetime]:
    return {clock: row.due_at for clock, row in (await deadlines(desk, ticket_id)).items()}


async def rows(desk: Desk, ticket_id: int) -> dict[Clock, tuple[datetime, datetime | None, datetime | None]]:
    """Each Deadline row as (due_at, met_at, breached_at)."""
    return {c: (r.due_at, r.met_at, r.breached_at) for c, r in (await deadlines(desk, ticket_id)).items()}


async def last_step(desk: Desk, ticket_id: int) -> Step:
    event = (await timeline(desk, ticket_id))[-1]
    return event.kind, event.old, event.new, event.actor_id


def steps(events: list[TicketEvent]) -> list[Step]:
    return [(event.kind, event.old, event.new, event.actor_id) for event in events]


async def state(desk: Desk, ticket_id: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    """Everything stored about a ticket: its row, its timeline and its deadline rows."""
    ticket = (await desk.ticket(ticket_id)).model_dump()
    events = [event.model_dump() for event in await timeline(desk, ticket_id)]
    rows = sorted((row.clock, row.model_dump()) for row in (await deadlines(desk, ticket_id)).values())
    return ticket, events, rows


def error_of(rule: str) -> type[TicketRuleError]:
    """Who may act → Forbidden; when it may be done → IllegalTransition; anything else plain."""
    if rule.startswith(("site.", "role.", "level.client_prevails")):
        return Forbidden
    return IllegalTransition if rule.startswith("transition.") else TicketRuleError


async def refuse(desk: Desk, rule: str, operation: Run, what: str = "") -> TicketRuleError:
    """Assert ``operation`` is refused by ``rule``, inside a transaction that still commits
    (as a bot that answers with the error would): a refusal must leave nothing behind."""

    async def attempt(service: TicketService) -> TicketRuleError:
        try:
            await operation(service)
        except TicketRuleError as exc:
            return exc
        pytest.fail(f"{what} was accepted; expected a refusal by {rule}")

    exc = await desk.run(attempt)
    assert (type(exc), exc.rule) == (error_of(rule), rule), f"{what}: {exc}"
    assert exc.message and str(exc) == f"[{rule}] {exc.message}"
    return exc


async def acknowledged(desk: Desk, world: World, level: int = 2) -> int:
    """A ticket reported at START, classified by its reporter and taken by the engineer."""
    ticket_id = await desk.report(level=level)
    await desk.run(lambda s: s.acknowledge(ticket_id, world.engineer))
    return ticket_id


async def test_the_happy_path_stamps_every_step(desk: Desk, clock: ManualClock, world: World) -> None:
    t, r, e = await desk.report(level=None), world.reporter, world.engineer
    plan: list[tuple[Run, str, int, str, str]] = [
        (lambda s: s.classify(t, r, 2, confirmed=True), "classify", r, "classified", "classified_at"),
        (lambda s: s.acknowledge(t, e), "acknowledge", e, "acknowledged", "acknowledged_at"),
        (lambda s: s.arrive(t, e), "arrive", e, "on_site", "arrived_at"),
        (lambda s: s.restore(t, e, "单节点恢复"), "restore", e, "restored", "restored_at"),
        (lambda s: s.resolve(t, e, "更换电源"), "resolve", e, "resolved", "resolved_at"),
        (lambda s: s.close(t, r), "close", r, "closed", "closed_at"),
    ]
    stamped = {"reported_at": START}
    assert steps(await timeline(desk, t)) == [("report", None, "reported", r)]
    for revision, (operation, kind, actor, status, stamp) in enumerate(plan, start=2):
        old = (await desk.ticket(t)).status
        stamped[stamp] = clock.advance(7 * M)
        await desk.run(operation)
        ticket, events = await desk.ticket(t), await timeline(desk, t)
        assert (ticket.status, ticket.revision, len(events)) == (status, revision, revision)
        assert {name: getattr(ticket, name) for name in stamped} == stamped
        assert ticket.assignee_id == (None if kind == "classify" else e)
        assert (steps(events[-1:]), events[-1].at) == ([(kind, old, status, actor)], stamped[stamp])
    assert await rows(desk, t) == {
        RESPONSE: (START + 30 * M, stamped["acknowledged_at"], None),
        RESTORE: (START + 8 * H, stamped["restored_at"], None),
        RESOLVE: (START + 24 * H, stamped["resolved_at"], None),
    }
    details = [event.detail for event in await timeline(desk, t)]
    assert details[1] == {"answered_level": 2, "confirmed": True, "provisional_level": 2}
    assert details[4:6] == [{"note": "单节点恢复"}, {"note": "更换电源"}]


REFUSALS: list[tuple[str, str, Op]] = [
    ("reporter-arrives", "role.arrive", lambda s, w, t: s.arrive(t, w.reporter)),
    ("manager-cancels", "role.cancel", lambda s, w, t: s.cancel(t, w.manager)),
    ("other-reporter-cancels", "role.cancel", lambda s, w, t: s.cancel(t, w.other_reporter)),
    ("engineer-sets-level", "role.set_level", lambda s, w, t: s.set_level(t, w.engineer, 1)),
    ("other-reporter-sets-level", "role.set_level", lambda s, w, t: s.set_level(t, w.other_reporter, 1)),
    ("engineer-delays", "role.delay", lambda s, w, t: s.delay(t, w.engineer, START + 99 * H, "备件")),
    ("stranger-notes", "site.member", lambda s, w, t: s.note(t, w.stranger, "看看")),
    ("acknowledge-again", "transition.acknowledge", lambda s, w, t: s.acknowledge(t, w.engineer)),
    ("close-unresolved", "transition.close", lambda s, w, t: s.close(t, w.reporter)),
    ("classify-again", "transition.classify", lambda s, w, t: s.classify(t, w.supervisor, 1, confirmed=True)),
    ("empty-note", "note.empty", lambda s, w, t: s.note(t, w.engineer, "  ")),
    ("level-4", "level.range", lambda s, w, t: s.set_level(t, w.reporter, 4)),
    ("propose-same-level", "level.same", lambda s, w, t: s.propose_level(t, w.engineer, 2)),
    ("no-proposal", "level.no_proposal", lambda s, w, t: s.answer_proposal(t, w.reporter, accept=True)),
    ("assign-to-reporter", "assign.engineer", lambda s, w, t: s.assign(t, w.supervisor, w.reporter)),
    ("delay-earlier", "sla.delay", lambda s, w, t: s.delay(t, w.supervisor, START + 23 * H, "备件")),
    ("delay-no-reason", "sla.delay_reason", lambda s, w, t: s.delay(t, w.supervisor, START + 99 * H, " ")),
]


@pytest.mark.parametrize(("rule", "operation"), [pytest.param(r, op, id=i) for i, r, op in REFUSALS])
async def test_a_refused_request_changes_nothing(
    desk: Desk, clock: ManualClock, world: World, rule: str, operation: Op
) -> None:
    t = await acknowledged(desk, world)
    before = await state(desk, t)
    clock.advance(H)
    await refuse(desk, rule, lambda s: operation(s, world, t))
    assert await state(desk, t) == before
    ticket = await desk.ticket(t)
    assert (ticket.status, ticket.revision, len(await timeline(desk, t))) == ("acknowledged", 3, 3)


async def test_the_reporter_accepts_a_proposal(desk: Desk, clock: ManualClock, world: World) -> None:
    w, t = world, await desk.report(level=2)
    await desk.run(lambda s: s.propose_level(t, w.engineer, 1, "核心交换机宕机"))
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.proposed_level, ticket.proposed_by_id) == (2, 1, w.engineer)
    clock.advance(H)
    await desk.run(lambda s: s.answer_proposal(t, w.reporter, accept=True))
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.level_confirmed, ticket.level_set_by) == (1, True, "reporter")
    assert (ticket.proposed_level, ticket.proposed_by_id) == (None, None)
    assert await dues(desk, t) == due(START, 1)  # counted from the report, not from the answer
    events = await timeline(desk, t)
    assert steps(events[-2:]) == [
        ("propose_level", "2", "1", w.engineer),
        ("accept_level", "2", "1", w.reporter),
    ]
    assert [events[-2].detail, events[-1].detail] == [{"note": "核心交换机宕机"}, {"proposed_level": 1}]


async def test_a_rejected_proposal_leaves_the_level(desk: Desk, world: World) -> None:
    w, t = world, await desk.report(level=2)
    await desk.run(lambda s: s.propose_level(t, w.engineer, 3))
    await desk.run(lambda s: s.answer_proposal(t, w.reporter, accept=False))
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.level_set_by) == (2, "reporter")
    assert (ticket.proposed_level, ticket.proposed_by_id) == (None, None)
    assert await dues(desk, t) == due(START, 2)
    assert await last_step(desk, t) == ("reject_level", "2", "2", w.reporter)
    await refuse(desk, "level.no_proposal", lambda s: s.answer_proposal(t, w.reporter, accept=False))


async def test_the_supervisor_has_the_last_word(desk: Desk, world: World) -> None:
    w, t = world, await desk.report(level=2)
    await desk.run(lambda s: s.set_level(t, w.supervisor, 1))
    assert (await desk.ticket(t)).level_set_by == "supervisor"
    exc = await refuse(desk, "level.client_prevails", lambda s: s.set_level(t, w.reporter, 3))
    assert exc.message == "the level was set by the supervisor; only the supervisor can change it now"
    await desk.run(lambda s: s.propose_level(t, w.engineer, 3))
    await refuse(desk, "level.client_prevails", lambda s: s.answer_proposal(t, w.reporter, accept=True))
    await desk.run(lambda s: s.answer_proposal(t, w.supervisor, accept=True))
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.level_set_by, ticket.proposed_level) == (3, "supervisor", None)
    assert steps((await timeline(desk, t))[2:]) == [
        ("set_level", "2", "1", w.supervisor),
        ("propose_level", "1", "3", w.engineer),
        ("accept_level", "1", "3", w.supervisor),
    ]


async def test_a_level_set_by_the_system_is_provisional(desk: Desk, clock: ManualClock, world: World) -> None:
    w, t = world, await desk.report(level=None)
    window_end = clock.advance(10 * M)
    await desk.run(lambda s: s.classify(t, None, 2, confirmed=False))
    ticket = await desk.ticket(t)
    assert (ticket.status, ticket.level, ticket.level_confirmed) == ("classified", 2, False)
    assert (ticket.level_set_by, ticket.classified_at) == ("system", window_end)
    assert await last_step(desk, t) == ("classify", "reported", "classified", None)
    await desk.run(lambda s: s.set_level(t, w.reporter, 1))
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.level_confirmed, ticket.level_set_by) == (1, True, "reporter")
    assert await last_step(desk, t) == ("set_level", "2", "1", w.reporter)


async def test_a_ticket_is_handed_to_another_engineer(desk: Desk, world: World) -> None:
    w, t = world, await acknowledged(desk, world)
    await desk.run(lambda s: s.assign(t, w.supervisor, w.backup_engineer))
    assert (await desk.ticket(t)).assignee_id == w.backup_engineer
    assert await last_step(desk, t) == ("assign", str(w.engineer), str(w.backup_engineer), w.supervisor)


async def test_a_third_party_delay(desk: Desk, clock: ManualClock, world: World) -> None:
    w, t = world, await acknowledged(desk, world)
    clock.advance(2 * H)
    agreed = START + 72 * H
    await desk.run(lambda s: s.delay(t, w.supervisor, agreed, " 等待厂商返修硬盘 "))
    assert (await desk.ticket(t)).resolve_due_override == agreed
    assert await dues(desk, t) == {**due(START, 2), RESOLVE: agreed}
    event = (await timeline(desk, t))[-1]
    assert steps([event]) == [("delay", (START + 24 * H).isoformat(), agreed.isoformat(), w.supervisor)]
    assert (event.old, event.new) == ("2026-12-02T01:00:00+00:00", "2026-12-04T01:00:00+00:00")
    assert event.detail == {"reason": "等待厂商返修硬盘"}
    later = START + 48 * H  # later than the first deadline, earlier than the agreed one
    await refuse(desk, "sla.delay", lambda s: s.delay(t, w.supervisor, later, "备件"))
    assert (await dues(desk, t))[RESOLVE] == agreed


async def test_an_unresolved_fault_rises_to_level_one(desk: Desk, clock: ManualClock, world: World) -> None:
    w, t = world, await desk.report(level=3)
    taken = clock.advance(5 * M)
    await desk.run(lambda s: s.acknowledge(t, w.engineer))
    arrived = clock.advance(55 * M)
    await desk.run(lambda s: s.arrive(t, w.engineer))
    assert await dues(desk, t) == {RESPONSE: START + 60 * M, RESOLVE: arrived + 48 * H}

    async def rise() -> Rise | None:
        return await desk.run(lambda s: s.apply_rise(t))

    async def nothing_happens() -> None:
        before = await state(desk, t)
        assert await rise() is None
        assert await state(desk, t) == before

    clock.set(arrived + 47 * H)
    await nothing_happens()
    first = clock.advance(H + M)
    await desk.run(lambda s: s.note(t, w.engineer, "等待备件"))  # the breach shows on the rows
    assert (await rows(desk, t))[RESOLVE] == (arrived + 48 * H, None, arrived + 48 * H)
    assert await rise() == Rise(3, 2, first, restarts_clocks=True, flag_manager=False)
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.level_set_by, ticket.clocks_started_at) == (2, "rise", first)
    assert ticket.manager_flagged is False
    assert await rows(desk, t) == {  # the new level's clocks run from the rise: not born breached
        RESPONSE: (first + 30 * M, taken, None),
        RESTORE: (first + 8 * H, None, None),
        RESOLVE: (first + 24 * H, None, None),
    }

    second = clock.advance(24 * H + M)
    assert await rise() == Rise(2, 1, second, restarts_clocks=True, flag_manager=False)
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.clocks_started_at, ticket.manager_flagged) == (1, second, False)
    assert await dues(desk, t) == due(second, 1)

    third = clock.advance(12 * H + M)  # level 1 cannot rise: it stays 1 and the manager is flagged
    assert await rise() == Rise(1, 1, third, restarts_clocks=False, flag_manager=True)
    ticket = await desk.ticket(t)
    assert (ticket.level, ticket.clocks_started_at, ticket.manager_flagged) == (1, second, True)
    assert (await rows(desk, t))[RESOLVE] == (second + 12 * H, None, second + 12 * H)
    clock.advance(H)
    await nothing_happens()  # flagged once

    rises = [event for event in await timeline(desk, t) if event.kind == "rise"]
    assert steps(rises) == [("rise", "3", "2", None), ("rise", "2", "1", None), ("rise", "1", "1", None)]
    assert [event.at for event in rises] == [first, second, third]
    assert [event.detail for event in rises] == [
        {"restarts_clocks": True, "flag_manager": False},
        {"restarts_clocks": True, "flag_manager": False},
        {"restarts_clocks": False, "flag_manager": True},
    ]


async def test_a_level_three_fault_does_not_rise_before_arrival(desk: Desk, clock: ManualClock) -> None:
    t = await desk.report(level=3)
    clock.advance(30 * 24 * H)
    assert await desk.run(lambda s: s.apply_rise(t)) is None
    assert await dues(desk, t) == {RESPONSE: START + 60 * M}


async def test_cancel_drops_the_deadlines(desk: Desk, clock: ManualClock, world: World) -> None:
    t = await desk.report(level=2)
    assert await dues(desk, t) == due(START, 2)
    now = clock.advance(3 * M)
    await desk.run(lambda s: s.cancel(t, world.reporter, " 误报 "))
    ticket = await desk.ticket(t)
    assert (ticket.status, ticket.cancelled_at) == ("cancelled", now)
    assert await deadlines(desk, t) == {}
    assert await last_step(desk, t) == ("cancel", "classified", "cancelled", world.reporter)
    assert (await timeline(desk, t))[-1].detail == {"note": "误报"}


async def test_a_note_goes_on_the_timeline(desk: Desk, clock: ManualClock, world: World) -> None:
    t = await acknowledged(desk, world)
    now = clock.advance(20 * M)
    await desk.run(lambda s: s.note(t, world.manager, " 已联系厂商 "))
    ticket = await desk.ticket(t)
    assert (ticket.status, ticket.revision) == ("acknowledged", 4)
    event = (await timeline(desk, t))[-1]
    assert steps([event]) == [("note", None, None, world.manager)]
    assert (event.at, event.detail) == (now, {"text": "已联系厂商"})


EVERY_ACTION: list[tuple[str, ActorOp]] = [
    ("classify", lambda s, t, a, w: s.classify(t, a, 1, confirmed=True)),
    ("acknowledge", lambda s, t, a, w: s.acknowledge(t, a)),
    ("arrive", lambda s, t, a, w: s.arrive(t, a)),
    ("restore", lambda s, t, a, w: s.restore(t, a)),
    ("resolve", lambda s, t, a, w: s.resolve(t, a)),
    ("close", lambda s, t, a, w: s.close(t, a)),
    ("cancel", lambda s, t, a, w: s.cancel(t, a)),
    ("set_level", lambda s, t, a, w: s.set_level(t, a, 1)),
    ("propose_level", lambda s, t, a, w: s.propose_level(t, a, 1)),
    ("accept_level", lambda s, t, a, w: s.answer_proposal(t, a, accept=True)),
    ("reject_level", lambda s, t, a, w: s.answer_proposal(t, a, accept=False)),
    ("assign", lambda s, t, a, w: s.assign(t, a, w.backup_engineer)),
    ("delay", lambda s, t, a, w: s.delay(t, a, START + 99 * H, "第三方")),
    ("note", lambda s, t, a, w: s.note(t, a, "看看")),
]


def bind(operation: ActorOp, ticket_id: int, actor: int, world: World) -> Run:
    return lambda service: operation(service, ticket_id, actor, world)


def report_as(world: World, reporter: int, subsystem_id: int | None) -> Run:
    site_id, subsystem = world.site.id or 0, subsystem_id or 0
    return lambda s: s.report(
        site_id=site_id, reporter_id=reporter, subsystem_id=subsystem, description="断网"
    )


@pytest.mark.parametrize("who", ["outsider", "stranger"])
async def test_other_sites_see_nothing(desk: Desk, world: World, who: str) -> None:
    t, actor = await acknowledged(desk, world), getattr(world, who)
    await desk.run(lambda s: s.propose_level(t, world.engineer, 1))
    before = await state(desk, t)
    for action, operation in EVERY_ACTION:
        await refuse(desk, "site.member", bind(operation, t, actor, world), f"{who} {action}")
    assert await state(desk, t) == before
    await refuse(desk, "site.member", report_as(world, actor, world.subsystems[0].id), f"{who} report")


async def test_a_subsystem_of_another_site_is_refused(desk: Desk, world: World) -> None:
    async with transaction(desk.db.factory) as session:
        foreign = (await subsystems(session, world.other_site.id or 0))[0].id
    exc = await refuse(desk, "report.subsystem", report_as(world, world.reporter, foreign))
    assert exc.message == "the subsystem does not belong to this site"
    async with transaction(desk.db.factory) as session:
        assert list(await list_tickets(session)) == []
