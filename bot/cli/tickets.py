"""``dutydesk tickets``: list tickets, show one with its timeline and deadlines in local time."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli.common import CliError, console, local, run
from bot.runtime import Runtime
from handlers.sla.rules import evaluate
from storage.engine import transaction
from storage.models import Asset, Person, Site, Subsystem, Ticket
from storage.repositories.sites import list_sites, site_by_slug
from storage.repositories.tickets import events_of, get_ticket, list_tickets

app = typer.Typer(help="Tickets: `dutydesk tickets` lists them, `dutydesk tickets show ID` shows one.")


async def _name(session: AsyncSession, person_id: int | None) -> str:
    if person_id is None:
        return "—"
    person = await session.get(Person, person_id)
    return person.name if person else f"#{person_id}"


async def _subsystem(session: AsyncSession, ticket: Ticket) -> Subsystem | None:
    return None if ticket.subsystem_id is None else await session.get(Subsystem, ticket.subsystem_id)


@app.callback(invoke_without_command=True)
def list_(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option("--site", help="only this site's tickets")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only tickets still open")] = False,
) -> None:
    """List tickets, newest first, times in each site's local time."""
    if ctx.invoked_subcommand is not None:
        return

    async def _list(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            site_id = None
            if site is not None:
                found = await site_by_slug(session, site)
                if found is None:
                    raise CliError(f"no site {site!r}")
                site_id = found.id
            sites = {s.id: s for s in await list_sites(session)}
            tickets = await list_tickets(session, site_id, open_only=open_only)
            table = Table(
                "id", "site", "level", "status", "subsystem", "reporter", "assignee", "reported", "next due"
            )
            now = runtime.clock.now()
            for ticket in tickets:
                where = sites[ticket.site_id]
                policy = runtime.policies.for_site(where.slug, where.policy_toml)
                pending = [s.due_at for s in evaluate(ticket, policy, now) if s.met_at is None and s.due_at]
                subsystem = await _subsystem(session, ticket)
                table.add_row(
                    str(ticket.id),
                    where.slug,
                    f"{ticket.level}{'' if ticket.level_confirmed else '?'}",
                    ticket.status,
                    subsystem.name if subsystem else "",
                    await _name(session, ticket.reporter_id),
                    await _name(session, ticket.assignee_id),
                    local(ticket.reported_at, where.timezone),
                    local(min(pending), where.timezone) if pending else "—",
                )
        console.print(table if tickets else "no tickets")

    run(_list)


@app.command("show")
def show(ticket_id: Annotated[int, typer.Argument(help="ticket number")]) -> None:
    """One ticket: details, deadlines and the whole timeline."""

    async def _show(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            ticket = await get_ticket(session, ticket_id)
            if ticket is None:
                raise CliError(f"no ticket {ticket_id}")
            site = await session.get(Site, ticket.site_id)
            assert site is not None
            await _print_ticket(session, runtime, ticket, site)

    run(_show)


async def _print_ticket(session: AsyncSession, runtime: Runtime, ticket: Ticket, site: Site) -> None:
    tz = site.timezone
    subsystem = await _subsystem(session, ticket)
    asset = await session.get(Asset, ticket.asset_id) if ticket.asset_id else None
    console.print(f"[bold]Ticket {ticket.id}[/bold] · {site.name} ({site.slug}) · times in {tz}")
    details = Table.grid(padding=(0, 2))
    settled = "confirmed" if ticket.level_confirmed else "provisional"
    level = f"{ticket.level} ({settled}, by {ticket.level_set_by})"
    for label, value in (
        ("status", ticket.status),
        ("level", level + (" · flagged for the manager" if ticket.manager_flagged else "")),
        ("subsystem", subsystem.name if subsystem else ""),
        ("asset", f"{asset.code} {asset.name}" if asset else ticket.place or "—"),
        ("reporter", await _name(session, ticket.reporter_id)),
        ("assignee", await _name(session, ticket.assignee_id)),
        ("reported", local(ticket.reported_at, tz)),
        ("description", ticket.description),
    ):
        details.add_row(label, value)
    console.print(details)

    policy = runtime.policies.for_site(site.slug, site.policy_toml)
    deadlines = Table("clock", "due", "met", "status", title="Deadlines")
    for state in evaluate(ticket, policy, runtime.clock.now()):
        due = local(state.due_at, tz) if state.due_at else "after arrival"
        deadlines.add_row(state.clock.value, due, local(state.met_at, tz), state.status.value)
    console.print(deadlines)

    timeline = Table("time", "who", "what", "change", "detail", title="Timeline")
    for event in await events_of(session, ticket.id or 0):
        change = f"{event.old or ''} → {event.new or ''}" if event.old or event.new else ""
        detail = ", ".join(f"{k}={v}" for k, v in event.detail.items())
        who = "system" if event.actor_id is None else await _name(session, event.actor_id)
        timeline.add_row(local(event.at, tz, "%Y-%m-%d %H:%M:%S"), who, event.kind, change, detail)
    console.print(timeline)
