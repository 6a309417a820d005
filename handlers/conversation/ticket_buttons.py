"""Buttons on a ticket message: 接单, 到场, 已恢复, 已解决, 改级别, level answers, 确认关闭.

Every press goes through the ticket service, which checks the presser's role and site and
the ticket's state. A refusal changes nothing and says why; a stale button (the ticket has
moved on) answers with the ticket's current state and the buttons that fit it now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.conversation import fault_report
from handlers.conversation.cards import buttons_for, card, handover_buttons, level_label, propose_buttons
from handlers.conversation.context import Context
from handlers.conversation.notify import Notifier
from handlers.texts import text
from handlers.tickets.machine import Action, Forbidden, IllegalTransition, TicketRuleError, check
from handlers.tickets.service import TicketService
from storage.enums import Role, TicketStatus
from storage.models import Person, Ticket
from storage.repositories.people import members, roles_at
from storage.repositories.tickets import get_ticket

Operation = Callable[[TicketService, int, int], Awaitable[Ticket]]

#: verb → (the service call, the timeline kind whose text the holders get)
OPERATIONS: dict[str, tuple[Operation, str]] = {
    "ack": (lambda s, t, p: s.acknowledge(t, p), "acknowledge"),
    "arr": (lambda s, t, p: s.arrive(t, p), "arrive"),
    "rst": (lambda s, t, p: s.restore(t, p), "restore"),
    "res": (lambda s, t, p: s.resolve(t, p), "resolve"),
    "cls": (lambda s, t, p: s.close(t, p), "close"),
    "acc": (lambda s, t, p: s.answer_proposal(t, p, accept=True), "accept_level"),
    "rej": (lambda s, t, p: s.answer_proposal(t, p, accept=False), "reject_level"),
}
LEVEL_OPERATIONS: dict[str, tuple[Callable[[TicketService, int, int, int], Awaitable[Ticket]], str]] = {
    "pl": (lambda s, t, p, n: s.propose_level(t, p, n), "propose_level"),
    "sl": (lambda s, t, p, n: s.set_level(t, p, n), "set_level"),
    "to": (lambda s, t, p, n: s.assign(t, p, n), "assign"),
}
#: Buttons that only open a choice: (the rule checked first, the choice shown)
CHOICES = {"prop": Action.PROPOSE_LEVEL, "hand": Action.ASSIGN}


def parse(action: str) -> tuple[int, str, int | None] | None:
    """ "t:12:ack" → (12, "ack", None); "t:12:sl:1" → (12, "sl", 1); anything else → None."""
    parts = action.split(":")
    if len(parts) not in (3, 4) or parts[0] != "t" or not parts[1].isdigit():
        return None
    arg = int(parts[3]) if len(parts) == 4 and parts[3].isdigit() else None
    if len(parts) == 4 and arg is None:
        return None
    return int(parts[1]), parts[2], arg


async def press(ctx: Context, action: str) -> None:
    """Apply a ticket button pressed by ctx.person."""
    parsed = parse(action)
    person_id = ctx.person.id or 0
    if parsed is None or (
        parsed[1] not in OPERATIONS and parsed[1] not in LEVEL_OPERATIONS and parsed[1] not in CHOICES
    ):
        ctx.reply.notice = ctx.t("stale_button")
        return
    ticket_id, verb, arg = parsed
    ticket = await get_ticket(ctx.session, ticket_id)
    if ticket is None:
        ctx.say(ctx.t("refused.no_ticket"))
        return
    try:
        if verb in CHOICES:
            actor = await ctx.service.actor(person_id, ticket.site_id)
            check(CHOICES[verb], TicketStatus(ticket.status), actor, ticket.reporter_id)
            if verb == "prop":
                ctx.say(ctx.t("pick_level"), propose_buttons(ticket, ctx.lang))
            else:
                others = [
                    p for p in await members(ctx.session, ticket.site_id, Role.ENGINEER) if p.id != person_id
                ]
                ctx.say(ctx.t("pick_engineer"), handover_buttons(ticket, others))
            return
        if verb in LEVEL_OPERATIONS:
            if arg is None:
                raise IllegalTransition("button", "no level given")
            level_call, kind = LEVEL_OPERATIONS[verb]
            ticket = await level_call(ctx.service, ticket_id, person_id, arg)
        else:
            call, kind = OPERATIONS[verb]
            ticket = await call(ctx.service, ticket_id, person_id)
    except IllegalTransition:
        await _show_current(ctx, ticket_id)
        return
    except TicketRuleError as refusal:
        ctx.reply.notice = _refusal(ctx, refusal)
        ctx.say(ctx.reply.notice)
        return
    await _announce(ctx, ticket, kind)
    if verb == "res":
        fault_report.start(ctx, ticket_id)


def _refusal(ctx: Context, refusal: TicketRuleError) -> str:
    if isinstance(refusal, Forbidden) and refusal.rule == "site.member":
        reason = ctx.t("refused.member")
    elif refusal.rule == "level.client_prevails":
        reason = ctx.t("refused.client_prevails")
    elif isinstance(refusal, Forbidden):
        reason = ctx.t("refused.role")
    else:
        reason = refusal.message
    return ctx.t("refused", reason=reason)


async def _show_current(ctx: Context, ticket_id: int) -> None:
    """A stale press: the ticket as it is now, with the buttons that fit it now."""
    ticket = await get_ticket(ctx.session, ticket_id)
    assert ticket is not None
    ctx.reply.notice = ctx.t("state_now", id=ticket_id, status=ctx.t(f"status.{ticket.status}"))
    roles = await roles_at(ctx.session, ctx.person.id or 0, ticket.site_id)
    if not roles:
        ctx.say(ctx.t("refused", reason=ctx.t("refused.member")))
        return
    policy = await ctx.service.policy_of(ticket)
    body = await card(ctx.session, ticket, policy, ctx.lang, ctx.clock.now())
    ctx.say(f"{ctx.reply.notice}\n{body}", buttons_for(ticket, roles, ctx.person.id or 0, ctx.lang))


async def _announce(ctx: Context, ticket: Ticket, kind: str) -> None:
    """The presser gets a short confirmation and their card; every other holder the news."""
    actor = ctx.person.name
    level = ticket.proposed_level if kind == "propose_level" and ticket.proposed_level else ticket.level
    assignee = await ctx.session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    name = assignee.name if assignee else ""

    def headline(lang: str) -> str:
        return text(lang, f"event.{kind}", actor=actor, level=level_label(lang, level), name=name)

    notifier = Notifier(ctx.session, ctx.policies, ctx.clock, ctx.reply)
    ctx.reply.notice = headline(ctx.lang)  # who did what: the toast, or the pressed card's caption
    await notifier.send_card(ctx.person, ticket, headline)
    # The engineers who were offered the ticket hear that someone took it.
    await notifier.tell(ticket, headline, exclude=ctx.person.id, offered=kind == "acknowledge")
