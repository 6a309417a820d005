"""How a ticket looks in chat: its card text, the promise of a level, times in the site's zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.conversation.ticket_context import TicketContext
from handlers.sla.policy import Policy
from handlers.sla.rules import evaluate
from handlers.texts import text
from storage.enums import TicketStatus
from storage.models import Asset, Site, Subsystem, Ticket

S = TicketStatus


def span(lang: str, delta: timedelta) -> str:
    """A duration the way people say it: "10分钟", "4小时", "2天" (rounded down to minutes)."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 120 or minutes % 60:
        if minutes >= 120:
            return text(lang, "unit.h", n=minutes // 60) + text(lang, "unit.m", n=minutes % 60)
        return text(lang, "unit.m", n=minutes)
    hours = minutes // 60
    if hours < 100 or hours % 24:
        return text(lang, "unit.h", n=hours)
    return text(lang, "unit.d", n=hours // 24)


def level_label(lang: str, level: int, *, confirmed: bool = True) -> str:
    """ "一级" or "一级（待确认）"."""
    return text(lang, f"level.{level}") + ("" if confirmed else text(lang, "unconfirmed"))


def promise(lang: str, level: int, policy: Policy) -> str:
    """ "一级 · 10分钟内响应 · 4小时内恢复 · 12小时内解决"."""
    times = policy.level(level)
    parts = [text(lang, f"level.{level}"), text(lang, "promise.response", span=span(lang, times.response))]
    if times.restore is not None:
        parts.append(text(lang, "promise.restore", span=span(lang, times.restore)))
    key = "promise.resolve_arrival" if times.resolve_from == "arrival" else "promise.resolve"
    parts.append(text(lang, key, span=span(lang, times.resolve)))
    return " · ".join(parts)


async def where(session: AsyncSession, ticket_or_ids: Ticket | tuple[int | None, int | None, str]) -> str:
    """ "计算机网络 · NET-CORE-01 核心交换机" from a ticket or (subsystem, asset, place)."""
    if isinstance(ticket_or_ids, Ticket):
        subsystem_id, asset_id, place = (
            ticket_or_ids.subsystem_id,
            ticket_or_ids.asset_id,
            ticket_or_ids.place,
        )
    else:
        subsystem_id, asset_id, place = ticket_or_ids
    parts = []
    if subsystem_id is not None and (subsystem := await session.get(Subsystem, subsystem_id)):
        parts.append(subsystem.name)
    if asset_id is not None and (asset := await session.get(Asset, asset_id)):
        parts.append(f"{asset.code} {asset.name}")
    if place:
        parts.append(place)
    return " · ".join(parts) or "—"


def local_time(site: Site, when: datetime, fmt: str = "%m-%d %H:%M") -> str:
    """A time in the site's zone, short: "12-01 09:10" (or as ``fmt`` says)."""
    return when.astimezone(ZoneInfo(site.timezone)).strftime(fmt)


def card_text(ctx: TicketContext, lang: str, now: datetime) -> str:
    """The ticket as a short message: level, status, place, description, reporter, next deadline."""
    ticket, site = ctx.ticket, ctx.site
    reporter = ctx.member(ticket.reporter_id)
    pending = [s for s in evaluate(ticket, ctx.policy, now) if s.met_at is None and s.due_at is not None]
    deadline = ""
    if pending and TicketStatus(ticket.status) not in (S.RESOLVED, S.CLOSED, S.CANCELLED):
        first = min(pending, key=lambda s: s.due_at or now)
        assert first.due_at is not None
        clock = text(lang, f"clock.{first.clock.value}")
        deadline = text(lang, "ticket.next_due", clock=clock, time=local_time(site, first.due_at))
    body = text(
        lang,
        "ticket.card",
        id=ticket.id,
        level=text(lang, f"level.{ticket.level}"),
        unconfirmed="" if ticket.level_confirmed else text(lang, "unconfirmed"),
        status=text(lang, f"status.{ticket.status}"),
        where=ctx.where(),
        description=_short(ticket.description),
        reporter=reporter.person.name if reporter else "—",
        phone=(reporter.person.phone or "") if reporter else "",
    ).strip()
    if deadline:
        body += "\n" + deadline
    if (assignee := ctx.member(ticket.assignee_id)) is not None:
        body += "\n" + text(lang, "ticket.assignee", name=assignee.person.name)
    return body


def _short(description: str, limit: int = 300) -> str:
    return description if len(description) <= limit else description[: limit - 1] + "…"
