"""What a due timer does: remind the engineer, report a missed clock up the chain, raise the level.

- A reminder (at the policy's fractions of each clock) goes to the ticket's engineer, or to
  every engineer of the site while nobody has taken it.
- A missed response goes to the backup engineers and the supervisors.
- A missed restore or resolve goes to the supervisors, and at level 1 to the managers too.
- A missed resolve raises the level one step (3 → 2 → 1), announced to the reporter, the
  engineers, the supervisors and, at level 1, the managers; a level-1 fault that misses again
  is flagged to the managers.

A timer whose clock was met meanwhile does nothing. Every firing writes a TicketEvent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation.cards import level_label, local_time, span
from handlers.conversation.notify import Notifier
from handlers.outgoing import Outbox
from handlers.sla import rules
from handlers.sla.policy import PolicyBook
from handlers.texts import text
from handlers.tickets.service import TicketService
from storage.enums import Clock as SlaClock
from storage.enums import Role
from storage.models import Person, Site, Ticket, Timer
from storage.repositories.people import members
from storage.repositories.tickets import OPEN_STATUSES, get_ticket


async def fire(
    session: AsyncSession, policies: PolicyBook, clock: Clock, out: Outbox, timer: Timer, ticket: Ticket
) -> None:
    """Carry out one claimed timer of ``ticket`` (locked by the caller) inside the caller's
    transaction; its messages go to ``out``."""
    if ticket.status not in OPEN_STATUSES or timer.clock is None:
        return
    service = TicketService(session, policies, clock)
    policy = await service.policy_of(ticket)
    which = SlaClock(timer.clock)
    state = next((s for s in rules.evaluate(ticket, policy, clock.now()) if s.clock is which), None)
    if state is None or state.met_at is not None or state.due_at is None:
        return
    notifier = Notifier(session, policies, clock, out)
    site = await session.get(Site, ticket.site_id)
    assert site is not None and ticket.id is not None
    due = local_time(site, state.due_at)
    if timer.kind == "reminder":
        if clock.now() >= state.due_at:  # late (the service was down): the breach speaks instead
            return
        await service.log(ticket.id, "reminder", {"clock": which.value, "fraction": timer.fraction})
        left = state.due_at - clock.now()
        await _tell(
            notifier, await _engineers(notifier, ticket), _message(ticket, "remind", which, due, left)
        )
        return
    await service.log(ticket.id, "breach", {"clock": which.value, "due_at": state.due_at.isoformat()})
    await _tell(notifier, await _escalation(notifier, ticket, which), _message(ticket, "breach", which, due))
    if which is SlaClock.RESOLVE:
        await _rise(session, service, notifier, ticket.id)


def _message(
    ticket: Ticket, key: str, which: SlaClock, due: str, left: timedelta | None = None
) -> Callable[[str], str]:
    def render(lang: str) -> str:
        values: dict[str, object] = {
            "id": ticket.id,
            "level": level_label(lang, ticket.level),
            "clock": text(lang, f"clock.{which.value}"),
            "time": due,
        }
        if left is not None:
            values["left"] = span(lang, left)
        return text(lang, key, **values)

    return render


async def _tell(notifier: Notifier, people: list[Person], message: Callable[[str], str]) -> None:
    for person in people:
        await notifier.send_text(person.id or 0, message)


async def _engineers(notifier: Notifier, ticket: Ticket) -> list[Person]:
    """The ticket's engineer, or the engineers on call while nobody has taken it."""
    if ticket.assignee_id is not None and (
        assignee := await notifier.session.get(Person, ticket.assignee_id)
    ):
        return [assignee]
    return await notifier.on_call(ticket)


async def _escalation(notifier: Notifier, ticket: Ticket, which: SlaClock) -> list[Person]:
    """Who hears that a clock was missed."""
    session = notifier.session
    supervisors = list(await members(session, ticket.site_id, Role.SUPERVISOR))
    if which is SlaClock.RESPONSE:
        return _unique(await notifier.backups(ticket) + supervisors)
    managers = list(await members(session, ticket.site_id, Role.MANAGER)) if ticket.level == 1 else []
    return _unique(supervisors + managers)


async def _rise(session: AsyncSession, service: TicketService, notifier: Notifier, ticket_id: int) -> None:
    risen = await service.apply_rise(ticket_id)
    ticket = await get_ticket(session, ticket_id)
    if risen is None or ticket is None:
        return
    people = await notifier.holders(ticket, offered=True)
    if risen.new_level == 1:
        people = _unique(people + list(await members(session, ticket.site_id, Role.MANAGER)))
    if risen.restarts_clocks:

        def headline(lang: str) -> str:
            old, new = level_label(lang, risen.old_level), level_label(lang, risen.new_level)
            return text(lang, "rise", id=ticket_id, old=old, new=new)

        for person in people:
            await notifier.send_card(person, ticket, headline)
    if risen.flag_manager:
        managers = list(await members(session, ticket.site_id, Role.MANAGER))
        await _tell(notifier, managers, lambda lang: text(lang, "manager_flag", id=ticket_id))


def _unique(people: list[Person]) -> list[Person]:
    seen: dict[int, Person] = {}
    for person in people:
        seen.setdefault(person.id or 0, person)
    return list(seen.values())
