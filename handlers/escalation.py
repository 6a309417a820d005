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
from handlers.conversation.ticket_context import Member, TicketContext
from handlers.outgoing import Outbox
from handlers.sla import rules
from handlers.sla.policy import PolicyBook
from handlers.texts import text
from handlers.tickets.service import TicketService
from storage.enums import Clock as SlaClock
from storage.enums import Role
from storage.models import Ticket, Timer
from storage.repositories.tickets import OPEN_STATUSES


async def fire(
    session: AsyncSession, policies: PolicyBook, clock: Clock, out: Outbox, timer: Timer, ticket: Ticket
) -> None:
    """Carry out one claimed timer of ``ticket`` (locked by the caller) inside the caller's
    transaction; its messages go to ``out``."""
    if ticket.status not in OPEN_STATUSES or timer.clock is None:
        return
    notifier = Notifier(session, policies, clock, out)
    ctx = await notifier.context(ticket)
    which = SlaClock(timer.clock)
    state = next((s for s in rules.evaluate(ticket, ctx.policy, clock.now()) if s.clock is which), None)
    if state is None or state.met_at is not None or state.due_at is None:
        return
    service = TicketService(session, policies, clock)
    due = local_time(ctx.site, state.due_at)
    if timer.kind == "reminder":
        if clock.now() >= state.due_at:  # late (the service was down): the breach speaks instead
            return
        await service.log(ticket, "reminder", {"clock": which.value, "fraction": timer.fraction}, ctx.policy)
        left = state.due_at - clock.now()
        await _tell(notifier, _engineers(ctx), _message(ticket, "remind", which, due, left))
        return
    await service.log(
        ticket, "breach", {"clock": which.value, "due_at": state.due_at.isoformat()}, ctx.policy
    )
    await _tell(notifier, _escalation(ctx, which), _message(ticket, "breach", which, due))
    if which is SlaClock.RESOLVE:
        await _rise(service, notifier, ticket)


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


async def _tell(notifier: Notifier, people: list[Member], message: Callable[[str], str]) -> None:
    for member in people:
        await notifier.send_text(member, message)


def _engineers(ctx: TicketContext) -> list[Member]:
    """The ticket's engineer, or the engineers on call while nobody has taken it."""
    assignee = ctx.member(ctx.ticket.assignee_id)
    return [assignee] if assignee is not None else ctx.on_call()


def _escalation(ctx: TicketContext, which: SlaClock) -> list[Member]:
    """Who hears that a clock was missed."""
    supervisors = ctx.with_role(Role.SUPERVISOR)
    if which is SlaClock.RESPONSE:
        return _unique(ctx.backups() + supervisors)
    managers = ctx.with_role(Role.MANAGER) if ctx.ticket.level == 1 else []
    return _unique(supervisors + managers)


async def _rise(service: TicketService, notifier: Notifier, ticket: Ticket) -> None:
    assert ticket.id is not None
    risen = await service.apply_rise(ticket.id)
    if risen is None:
        return
    ctx = await notifier.context(ticket)
    if risen.restarts_clocks:

        def headline(lang: str) -> str:
            old, new = level_label(lang, risen.old_level), level_label(lang, risen.new_level)
            return text(lang, "rise", id=ticket.id, old=old, new=new)

        managers = tuple(m.id for m in ctx.with_role(Role.MANAGER)) if risen.new_level == 1 else ()
        await notifier.tell(ticket, headline, offered=True, also=managers)
    if risen.flag_manager:
        await _tell(
            notifier, ctx.with_role(Role.MANAGER), lambda lang: text(lang, "manager_flag", id=ticket.id)
        )


def _unique(people: list[Member]) -> list[Member]:
    seen: dict[int, Member] = {}
    for member in people:
        seen.setdefault(member.id, member)
    return list(seen.values())
