"""The supervisor's daily overview and the engineers' weekly inspection reminder."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.clock import Clock
from handlers.conversation.notify import send_text_to
from handlers.outgoing import Outbox
from handlers.roster.calendar import WorkCalendar
from handlers.roster.roster import uncovered
from handlers.sla.policy import PolicyBook
from handlers.sla.rules import evaluate
from handlers.texts import text
from handlers.tickets.service import site_policy
from storage.enums import Role
from storage.models import Deadline, Site, Ticket
from storage.repositories.people import members
from storage.repositories.tickets import list_tickets

AT_RISK = timedelta(hours=2)
LOOK_AHEAD_DAYS = 7


async def daily_overview(
    session: AsyncSession, policies: PolicyBook, clock: Clock, out: Outbox, site_id: int
) -> None:
    """Open tickets, those due within two hours, yesterday's misses and uncovered days off ahead."""
    site = await session.get(Site, site_id)
    assert site is not None
    zone, now = ZoneInfo(site.timezone), clock.now()
    today = now.astimezone(zone).date()
    policy = await site_policy(session, policies, site_id)
    open_tickets = list(await list_tickets(session, site_id, open_only=True))
    at_risk = sum(
        1
        for ticket in open_tickets
        if any(
            s.met_at is None and s.due_at is not None and now <= s.due_at <= now + AT_RISK
            for s in evaluate(ticket, policy, now)
        )
    )
    start = datetime.combine(today - timedelta(days=1), time(0), tzinfo=zone)
    breached_query = (
        select(Deadline.id)
        .join(Ticket, col(Ticket.id) == col(Deadline.ticket_id))
        .where(
            Ticket.site_id == site_id,
            col(Deadline.breached_at) >= start,
            col(Deadline.breached_at) < start + timedelta(days=1),
        )
    )
    breached = len((await session.exec(breached_query)).all())
    gaps = await uncovered(session, site_id, today, today + timedelta(days=LOOK_AHEAD_DAYS), WorkCalendar())
    for supervisor in await members(session, site_id, Role.SUPERVISOR):

        def render(lang: str) -> str:
            days = ", ".join(d.strftime("%m-%d") for d in gaps) or text(lang, "none")
            return text(
                lang,
                "overview",
                site=site.name,
                date=today.strftime("%m-%d"),
                open=len(open_tickets),
                critical=sum(1 for t in open_tickets if t.level == 1),
                at_risk=at_risk,
                breached=breached,
                uncovered=days,
            )

        await send_text_to(session, out, supervisor.id or 0, render)


async def inspection_reminder(
    session: AsyncSession, policies: PolicyBook, clock: Clock, out: Outbox, site_id: int
) -> None:
    """Remind the site's engineers of the weekly inspection."""
    for engineer in await members(session, site_id, Role.ENGINEER):
        await send_text_to(session, out, engineer.id or 0, lambda lang: text(lang, "inspection"))
