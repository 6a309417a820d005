"""/my: the person's open tickets with status and time left, one line each."""

from __future__ import annotations

from handlers.conversation.cards import level_label, span, where
from handlers.dialogs.context import Context
from handlers.sla.rules import evaluate
from storage.enums import Role
from storage.models import Ticket
from storage.repositories.people import sites_of
from storage.repositories.tickets import list_tickets

MAX_LINES = 15


def _mine(ticket: Ticket, person_id: int, roles: frozenset[Role]) -> bool:
    if Role.SUPERVISOR in roles or Role.MANAGER in roles:
        return True
    if Role.ENGINEER in roles and ticket.assignee_id in (None, person_id):
        return True
    return ticket.reporter_id == person_id


async def show(ctx: Context) -> None:
    """List what the person reported, works on, or oversees."""
    person_id = ctx.me.id or 0
    now = ctx.clock.now()
    lines = []
    for site_id, roles in sorted((await sites_of(ctx.session, person_id)).items()):
        for ticket in await list_tickets(ctx.session, site_id, open_only=True):
            if not _mine(ticket, person_id, roles):
                continue
            policy = await ctx.service.policy_of(ticket)
            running = [s for s in evaluate(ticket, policy, now) if s.met_at is None and s.due_at is not None]
            if running:
                first = min(running, key=lambda s: s.due_at or now)
                assert first.due_at is not None
                clock = ctx.t(f"clock.{first.clock.value}")
                key = "my.left" if first.due_at > now else "my.overdue"
                left = ctx.t(key, clock=clock, span=span(ctx.lang, abs(first.due_at - now)))
            else:
                left = ctx.t("my.no_clock")
            lines.append(
                ctx.t(
                    "my.line",
                    id=ticket.id,
                    level=level_label(ctx.lang, ticket.level, confirmed=ticket.level_confirmed),
                    status=ctx.t(f"status.{ticket.status}"),
                    where=await where(ctx.session, ticket),
                    left=left,
                )
            )
    if not lines:
        ctx.say(ctx.t("my.none"))
        return
    ctx.say("\n".join([ctx.t("my.title"), *lines[:MAX_LINES]]))
