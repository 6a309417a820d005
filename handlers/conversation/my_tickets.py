"""/my: what waits for the person first (a ticket to close, a level to decide, one to take),
then the open tickets they reported, work on or oversee, one line each with the time left."""

from __future__ import annotations

from datetime import datetime

from handlers.conversation.cards import level_label, span, where
from handlers.dialogs.context import Context
from handlers.sla.rules import evaluate
from handlers.tickets.machine import Action, Actor, permitted
from storage.enums import Role, TicketStatus
from storage.models import Ticket
from storage.repositories.people import sites_of
from storage.repositories.tickets import OPEN_STATUSES, list_tickets

MAX_LINES = 15
#: What a person may be waited on for, most pressing first, with the text that says so.
WAITING = (
    (Action.ACKNOWLEDGE, "my.waits.ack"),
    (Action.ACCEPT_LEVEL, "my.waits.level"),
    (Action.CLOSE, "my.waits.close"),
)


def _mine(ticket: Ticket, person_id: int, roles: frozenset[Role]) -> bool:
    if Role.SUPERVISOR in roles or Role.MANAGER in roles:
        return True
    if Role.ENGINEER in roles and ticket.assignee_id in (None, person_id):
        return True
    return ticket.reporter_id == person_id


def _waits(ticket: Ticket, actor: Actor) -> str | None:
    """The catalogue key of what the ticket waits for from ``actor``, if anything."""
    for action, key in WAITING:
        if permitted(action, ticket, actor):
            return key
    if (
        Role.SUPERVISOR in actor.roles
        and not ticket.level_confirmed
        and permitted(Action.SET_LEVEL, ticket, actor)
    ):
        return "my.waits.level"
    return None


async def show(ctx: Context) -> None:
    """List what waits for the person, then what they reported, work on, or oversee."""
    me = ctx.me
    person_id = me.id or 0
    now = ctx.clock.now()
    waiting, others = [], []
    for site_id, roles in sorted((await sites_of(ctx.session, person_id)).items()):
        actor = Actor(person_id, roles, me.name)
        for ticket in await list_tickets(
            ctx.session, site_id, statuses=OPEN_STATUSES | {TicketStatus.RESOLVED}
        ):
            waits = _waits(ticket, actor)
            if waits is None and (
                ticket.status == TicketStatus.RESOLVED or not _mine(ticket, person_id, roles)
            ):
                continue
            line = await _line(ctx, ticket, now)
            if waits is not None:
                waiting.append(f"👉 {line} · {ctx.t(waits)}")
            else:
                others.append(line)
    lines = waiting + others
    if not lines:
        ctx.say(ctx.t("my.none"))
        return
    ctx.say("\n".join([ctx.t("my.title"), *lines[:MAX_LINES]]))


async def _line(ctx: Context, ticket: Ticket, now: datetime) -> str:
    policy = await ctx.service.policy_of(ticket)
    running = [s for s in evaluate(ticket, policy, now) if s.met_at is None and s.due_at is not None]
    if running and ticket.status != TicketStatus.RESOLVED:
        first = min(running, key=lambda s: s.due_at or now)
        assert first.due_at is not None
        clock = ctx.t(f"clock.{first.clock.value}")
        key = "my.left" if first.due_at > now else "my.overdue"
        left = ctx.t(key, clock=clock, span=span(ctx.lang, abs(first.due_at - now)))
    else:
        left = ctx.t("my.no_clock")
    return ctx.t(
        "my.line",
        id=ticket.id,
        level=level_label(ctx.lang, ticket.level, confirmed=ticket.level_confirmed),
        status=ctx.t(f"status.{ticket.status}"),
        where=await where(ctx.session, ticket),
        left=left,
    )
