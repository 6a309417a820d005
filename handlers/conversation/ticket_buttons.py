"""Pressing a ticket's button: 接单, 到场, 已恢复, 已解决, 改级别, 转派, level answers, 确认关闭, 撤销.

The press is decoded by the ticket codec before it gets here. The presser's site is checked
first: a person of another site, or a ticket number that does not exist, get the same answer,
so a forged press learns nothing. Every step then goes through the ticket service, which
checks the rule; a refusal changes nothing and says why in the person's language; a stale
button (the ticket has moved on) answers with the ticket's current state and its buttons now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.conversation import fault_report
from handlers.conversation.cards import level_label
from handlers.conversation.notify import Notifier, Pressed
from handlers.conversation.ticket_press import (
    ACTIONS,
    WITH_ARG,
    TicketPress,
    Verb,
    cancel_choice,
    engineer_choices,
    level_choices,
)
from handlers.dialogs.context import Context
from handlers.texts import text
from handlers.tickets.machine import Actor, IllegalTransition, TicketRuleError, check, guard
from handlers.tickets.service import TicketService
from storage.enums import Role, TicketStatus
from storage.models import Person, Ticket
from storage.repositories.people import members, roles_at
from storage.repositories.tickets import get_ticket

Operation = Callable[[TicketService, int, int, int | None], Awaitable[Ticket]]

#: verb → (the service call, the timeline kind whose text the holders get)
OPERATIONS: dict[Verb, tuple[Operation, str]] = {
    Verb.ACK: (lambda s, t, p, _: s.acknowledge(t, p), "acknowledge"),
    Verb.ARRIVE: (lambda s, t, p, _: s.arrive(t, p), "arrive"),
    Verb.RESTORE: (lambda s, t, p, _: s.restore(t, p), "restore"),
    Verb.RESOLVE: (lambda s, t, p, _: s.resolve(t, p), "resolve"),
    Verb.CLOSE: (lambda s, t, p, _: s.close(t, p), "close"),
    Verb.ACCEPT: (lambda s, t, p, _: s.answer_proposal(t, p, accept=True), "accept_level"),
    Verb.REJECT: (lambda s, t, p, _: s.answer_proposal(t, p, accept=False), "reject_level"),
    Verb.PROPOSE_LEVEL: (lambda s, t, p, n: s.propose_level(t, p, n or 0), "propose_level"),
    Verb.SET_LEVEL: (lambda s, t, p, n: s.set_level(t, p, n or 0), "set_level"),
    Verb.HAND_TO: (lambda s, t, p, n: s.assign(t, p, n or 0), "assign"),
    Verb.CANCEL_YES: (lambda s, t, p, _: s.cancel(t, p), "cancel"),
}
#: Rules whose refusal a person is told in their own words; any other gets the generic text.
REFUSALS = {
    "level.client_prevails": "refused.client_prevails",
    "level.reporter_settled": "refused.reporter_settled",
    "level.no_proposal": "refused.no_proposal",
    "level.same": "refused.level_same",
    "level.range": "refused.level_range",
    "assign.engineer": "refused.assign_engineer",
    "assign.holder": "refused.assign_holder",
    "assign.same": "refused.assign_same",
}


async def press(ctx: Context, pressed: TicketPress) -> None:
    """Apply a ticket button pressed by the person of ``ctx``."""
    person = ctx.me
    ticket = await get_ticket(ctx.session, pressed.ticket)
    roles = frozenset() if ticket is None else await roles_at(ctx.session, person.id or 0, ticket.site_id)
    if ticket is None or not roles:  # no such ticket, or not one of the person's sites: the same answer
        _refuse(ctx, ctx.t("refused.no_access"))
        return
    ctx.site_id = ticket.site_id
    if (pressed.arg is not None) != (pressed.verb in WITH_ARG):
        ctx.notice = ctx.t("stale_button")
        return
    actor = Actor(person.id, roles, person.name)
    try:
        if pressed.verb not in OPERATIONS:
            await _offer_choice(ctx, ticket, actor, pressed.verb)
            return
        call, kind = OPERATIONS[pressed.verb]
        ticket = await call(ctx.service, pressed.ticket, person.id or 0, pressed.arg)
    except IllegalTransition:
        await _show_current(ctx, ticket, actor)
        return
    except TicketRuleError as refusal:
        _refuse(
            ctx,
            ctx.t(
                REFUSALS.get(
                    refusal.rule, "refused.role" if refusal.rule.startswith("role.") else "refused.generic"
                )
            ),
        )
        return
    await _announce(ctx, ticket, kind)
    if pressed.verb is Verb.RESOLVE:
        await fault_report.start(ctx, pressed.ticket)


def _refuse(ctx: Context, reason: str) -> None:
    ctx.notice = ctx.t("refused", reason=reason)
    ctx.say(ctx.notice)


async def _offer_choice(ctx: Context, ticket: Ticket, actor: Actor, verb: Verb) -> None:
    """改级别, 转派, 撤销 open a choice, after the rule of the step they lead to is checked."""
    action = ACTIONS[verb]
    check(action, TicketStatus(ticket.status), actor, ticket.reporter_id)
    guard(action, ticket, actor)
    assert ticket.id is not None
    if verb is Verb.PROPOSE:
        ctx.say(ctx.t("pick_level"), level_choices(ticket.id, ticket.level, ctx.lang))
    elif verb is Verb.HAND:
        engineers = [
            (p.id or 0, p.name)
            for p in await members(ctx.session, ticket.site_id, Role.ENGINEER)
            if p.id not in (ticket.assignee_id, actor.person_id)
        ]
        ctx.say(ctx.t("pick_engineer"), engineer_choices(ticket.id, engineers))
    else:
        ctx.say(ctx.t("confirm_cancel", id=ticket.id), cancel_choice(ticket.id, ctx.lang))


async def _show_current(ctx: Context, ticket: Ticket, actor: Actor) -> None:
    """A stale press: the answer says how the ticket stands now, and the person's card comes
    down to the bottom of the chat, current, with the buttons that fit it now."""
    fresh = await get_ticket(ctx.session, ticket.id or 0)
    assert fresh is not None
    ctx.notice = ctx.t("state_now", id=fresh.id, status=ctx.t(f"status.{fresh.status}"))
    notice = ctx.notice
    await _notifier(ctx).move(fresh, actor.person_id or 0, lambda _lang: notice)


async def _announce(ctx: Context, ticket: Ticket, kind: str) -> None:
    """The presser's card changes in place (with a toast); every other holder's card changes
    and they get a one-line notice (or their card moves down when something is asked of them)."""
    actor = ctx.me.name
    level = ticket.proposed_level if kind == "propose_level" and ticket.proposed_level else ticket.level
    assignee = await ctx.session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    name = assignee.name if assignee else ""

    def headline(lang: str) -> str:
        return text(lang, f"event.{kind}", actor=actor, level=level_label(lang, level), name=name)

    event = ctx.event
    pressed = Pressed(
        ctx.me.id or 0,
        event.message_ref if event else None,
        event.card_token if event else None,
    )
    ctx.notice = headline(ctx.lang)  # who did what: the toast
    notifier = _notifier(ctx)
    # The engineers who were offered the ticket hear that someone took it.
    await notifier.tell(ticket, headline, pressed=pressed, offered=kind == "acknowledge")
    card = (await notifier.context(ticket)).cards.get(ctx.here)
    ctx.card_pressed = card is not None and event is not None and card.handle == event.message_ref


def _notifier(ctx: Context) -> Notifier:
    return Notifier(ctx.session, ctx.policies, ctx.clock, ctx.out)
