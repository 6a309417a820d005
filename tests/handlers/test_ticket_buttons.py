"""The buttons a person sees on a ticket are exactly the steps the ticket service lets them take.

Every status (and the states the guards look at: a pending proposal, a level the supervisor or
the service set) is walked with every kind of person; for each button the service call behind
it is tried in a transaction that is rolled back: shown ⇔ accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from handlers.conversation.ticket_press import ROWS, TicketPress, Verb, buttons_for
from handlers.dialogs.buttons import decode
from handlers.texts import ZH
from handlers.tickets.machine import Actor, TicketRuleError
from handlers.tickets.service import TicketService
from storage.engine import transaction
from storage.models import Person
from storage.repositories.people import roles_at
from storage.repositories.tickets import get_ticket
from tests.conftest import Desk, World

Setup = Callable[[Desk, World], Awaitable[int]]
Call = Callable[[TicketService, int, int, World], Awaitable[object]]


async def _at(desk: Desk, w: World, *steps: str, level: int | None = 2) -> int:
    t = await desk.report(level=level)
    calls: dict[str, Call] = {
        "ack": lambda s, t, a, w: s.acknowledge(t, w.engineer),
        "arr": lambda s, t, a, w: s.arrive(t, w.engineer),
        "rst": lambda s, t, a, w: s.restore(t, w.engineer),
        "res": lambda s, t, a, w: s.resolve(t, w.engineer),
        "cls": lambda s, t, a, w: s.close(t, w.reporter),
        "cxl": lambda s, t, a, w: s.cancel(t, w.reporter),
        "prop": lambda s, t, a, w: s.propose_level(t, w.engineer, 3),
        "sup": lambda s, t, a, w: s.set_level(t, w.supervisor, 1),
    }
    for step in steps:
        call = calls[step]
        await desk.run(lambda s, call=call: call(s, t, 0, w))  # type: ignore[misc]
    return t


SITUATIONS: dict[str, Setup] = {
    "reported": lambda d, w: _at(d, w, level=None),
    "classified": lambda d, w: _at(d, w),
    "classified, provisional": lambda d, w: _provisional(d, w),
    "classified, set by the supervisor": lambda d, w: _at(d, w, "sup"),
    "acknowledged": lambda d, w: _at(d, w, "ack"),
    "acknowledged, level proposed": lambda d, w: _at(d, w, "ack", "prop"),
    "on site": lambda d, w: _at(d, w, "ack", "arr"),
    "restored": lambda d, w: _at(d, w, "ack", "rst"),
    "restored, level proposed": lambda d, w: _at(d, w, "ack", "rst", "prop"),
    "resolved": lambda d, w: _at(d, w, "ack", "res"),
    "closed": lambda d, w: _at(d, w, "ack", "res", "cls"),
    "cancelled": lambda d, w: _at(d, w, "cxl"),
}
PEOPLE = ["reporter", "other_reporter", "engineer", "backup_engineer", "supervisor", "manager", "outsider"]


async def _provisional(desk: Desk, w: World) -> int:
    t = await desk.report(level=None)
    await desk.run(lambda s: s.classify(t, None, 2, confirmed=False))
    return t


def _tries(verb: Verb, level: int, w: World) -> list[tuple[int | None, Call]]:
    """The service calls a button stands for: (its argument, the call)."""
    others = [n for n in (1, 2, 3) if n != level]
    single: dict[Verb, Call] = {
        Verb.ACK: lambda s, t, a, w: s.acknowledge(t, a),
        Verb.ARRIVE: lambda s, t, a, w: s.arrive(t, a),
        Verb.RESTORE: lambda s, t, a, w: s.restore(t, a),
        Verb.RESOLVE: lambda s, t, a, w: s.resolve(t, a),
        Verb.CLOSE: lambda s, t, a, w: s.close(t, a),
        Verb.ACCEPT: lambda s, t, a, w: s.answer_proposal(t, a, accept=True),
        Verb.REJECT: lambda s, t, a, w: s.answer_proposal(t, a, accept=False),
        Verb.CANCEL: lambda s, t, a, w: s.cancel(t, a),
    }
    if verb in single:
        return [(None, single[verb])]
    if verb is Verb.SET_LEVEL:
        return [(n, _with_level("set", n)) for n in others]
    if verb is Verb.PROPOSE:
        return [(n, _with_level("propose", n)) for n in others]
    assert verb is Verb.HAND
    return [
        (None, lambda s, t, a, w: s.assign(t, a, w.backup_engineer)),
        (None, lambda s, t, a, w: s.assign(t, a, w.engineer)),
    ]


def _with_level(how: str, level: int) -> Call:
    if how == "set":
        return lambda s, t, a, w: s.set_level(t, a, level)
    return lambda s, t, a, w: s.propose_level(t, a, level)


class _RollBack(Exception):
    pass


async def _accepted(desk: Desk, ticket_id: int, person: int, call: Call) -> bool:
    """Whether the service takes the call (nothing is kept either way)."""
    try:
        async with transaction(desk.db.factory) as session:
            await call(TicketService(session, desk.policies, desk.clock), ticket_id, person, desk.world)
            raise _RollBack
    except _RollBack:
        return True
    except TicketRuleError:
        return False


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # the rules, not the engine, are under test
@pytest.mark.parametrize("situation", SITUATIONS)
async def test_a_button_is_shown_exactly_when_the_service_takes_it(desk: Desk, situation: str) -> None:
    w = desk.world
    t = await SITUATIONS[situation](desk, w)
    async with transaction(desk.db.factory) as session:
        ticket = await get_ticket(session, t)
        assert ticket is not None
        actors = {}
        for kind in PEOPLE:
            person = await session.get(Person, getattr(w, kind))
            assert person is not None and person.id is not None
            actors[kind] = Actor(person.id, await roles_at(session, person.id, ticket.site_id), person.name)
    verbs = [offer.verb for row in ROWS for offer in row]
    for kind, actor in actors.items():
        shown: dict[tuple[Verb, int | None], bool] = {}
        for row in buttons_for(ticket, actor, ZH):
            for button in row:
                pressed = decode(button.action)
                assert isinstance(pressed, TicketPress) and pressed.ticket == t
                shown[(pressed.verb, pressed.arg)] = True
        for verb in verbs:
            tries = _tries(verb, ticket.level, w)
            taken = [await _accepted(desk, t, actor.person_id or 0, call) for _, call in tries]
            if verb is Verb.SET_LEVEL:  # one button per level
                for (level, _), ok in zip(tries, taken, strict=True):
                    assert shown.get((verb, level), False) == ok, (situation, kind, verb.value, level)
            else:
                assert shown.get((verb, None), False) == any(taken), (situation, kind, verb.value)
