"""``dutydesk roster``: import the duty roster, show a week of it, check the days off ahead."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli.common import CliError, console, errors, fail, local, run
from bot.cli.imports import _import
from bot.runtime import Runtime
from handlers.roster.calendar import CalendarError, Day, DayKind, WorkCalendar, load_calendar, official_years
from handlers.roster.roster import OFFICE_HOURS, default_engineer, roster_days, uncovered
from handlers.roster.roster_import import ROSTER_COLUMNS, import_roster
from storage.engine import transaction
from storage.models import Person, Site
from storage.repositories.sites import site_by_slug

app = typer.Typer(help="The duty roster: who answers on holidays, weekends and nights.", no_args_is_help=True)

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
LABELS = {
    DayKind.WORKDAY: "工作日",
    DayKind.MAKEUP_WORKDAY: "调休上班",
    DayKind.HOLIDAY: "节假日",
    DayKind.WEEKEND: "节假日",
}

HOURS = ", ".join(f"{start:%H:%M}–{end:%H:%M}" for start, end in OFFICE_HOURS.periods)

CalendarOption = Annotated[
    Path | None,
    typer.Option("--calendar", help="TOML file of the site's own holiday and workday dates"),
]


def _calendar(path: Path | None) -> WorkCalendar:
    try:
        return load_calendar(path)
    except CalendarError as exc:
        fail(f"calendar refused: {exc}", 2)


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f'{option} {text!r}: expected "YYYY-MM-DD"')


def _label(day: Day) -> str:
    name = day.name or ("周末" if day.kind is DayKind.WEEKEND else "")
    return f"{LABELS[day.kind]} {name}".rstrip()


def _warn_unknown(calendar: WorkCalendar, start: date, end: date) -> None:
    years = calendar.unknown_years(start, end)
    if years:
        first, last = official_years()
        errors.print(
            f"note: the official holidays of {', '.join(map(str, years))} are not known (chinesecalendar "
            f"covers {first}–{last}): Monday–Friday assumed; name the holidays with --calendar FILE",
            style="yellow",
            markup=False,
        )


async def _site(session: AsyncSession, slug: str) -> Site:
    found = await site_by_slug(session, slug)
    if found is None or found.id is None:
        raise CliError(f"no site {slug!r}")
    return found


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help=f"columns: {', '.join(ROSTER_COLUMNS)}")]) -> None:
    """Import duty shifts (site, start, end, engineer, backup; times "YYYY-MM-DD HH:MM" local)."""
    _import(file, ROSTER_COLUMNS, "shifts", lambda s, rows, rt, p: import_roster(s, rows, rt.clock.now(), p))


@app.command("show")
def show(
    site: Annotated[str, typer.Option("--site", help="the site")],
    day: Annotated[
        str | None,
        typer.Argument(
            metavar="DATE", help="a day of the week (YYYY-MM-DD; default: today in the site's zone)"
        ),
    ] = None,
    week: Annotated[
        bool, typer.Option("--week", help="the ISO week (Monday to Sunday) containing DATE: the default view")
    ] = True,
    calendar_file: CalendarOption = None,
) -> None:
    """One ISO week, Monday to Sunday: each day's kind (工作日/节假日/调休上班) and its shifts."""
    del week  # `--week [DATE]` reads as documented; the week is the only view so far
    calendar = _calendar(calendar_file)
    wanted = _date(day, "DATE") if day else None

    async def _show(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            found = await _site(session, site)
            assert found.id is not None
            tz = found.timezone
            anchor = wanted or runtime.clock.now().astimezone(ZoneInfo(tz)).date()
            monday = anchor - timedelta(days=anchor.weekday())
            days = await roster_days(session, found.id, monday, monday + timedelta(days=6), calendar)
            names = await _names(
                session, {p for d in days for s in d.shifts for p in (s.engineer_id, s.backup_id)}
            )
            default = await default_engineer(session, found.id)
        year, number, _ = monday.isocalendar()
        table = Table(
            "date",
            "weekday",
            "day",
            f"shifts ({tz})",
            title=f"Duty roster · {found.slug} ({found.name}) · {year}-W{number:02d}",
            caption=f"working hours {HOURS} on working days: "
            + (default.name if default else "no engineer at this site"),
        )
        for entry in days:
            lines = [
                f"{local(s.starts_at, tz, '%m-%d %H:%M')}–{local(s.ends_at, tz, '%m-%d %H:%M')} "
                f"{names.get(s.engineer_id, '?')}"
                + (f" (备班 {names.get(s.backup_id, '?')})" if s.backup_id is not None else "")
                for s in entry.shifts
            ]
            if not lines:
                lines = ["—" if entry.day.working else "uncovered"]
            elif not entry.day.working and not entry.covered:
                lines.append("gaps: not covered 00:00–24:00")
            table.add_row(
                entry.day.date.isoformat(),
                WEEKDAYS[entry.day.date.weekday()],
                _label(entry.day),
                "\n".join(lines),
            )
        console.print(table)
        _warn_unknown(calendar, monday, monday + timedelta(days=6))

    run(_show)


async def _names(session: AsyncSession, ids: set[int | None]) -> dict[int | None, str]:
    found: dict[int | None, str] = {}
    for person_id in ids:
        person = await session.get(Person, person_id) if person_id is not None else None
        if person is not None:
            found[person_id] = person.name
    return found


@app.command("check")
def check(
    site: Annotated[str, typer.Option("--site", help="the site")],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="how many days ahead")] = 30,
    start: Annotated[
        str | None, typer.Option("--from", help="first day (YYYY-MM-DD; default: today in the site's zone)")
    ] = None,
    calendar_file: CalendarOption = None,
) -> None:
    """List the days off (holidays, weekends) ahead without a duty engineer all day; exit 1 if any."""
    calendar = _calendar(calendar_file)
    first_day = _date(start, "--from") if start else None

    async def _check(runtime: Runtime) -> tuple[list[date], date, date]:
        async with transaction(runtime.sessions) as session:
            found = await _site(session, site)
            assert found.id is not None
            first = first_day or runtime.clock.now().astimezone(ZoneInfo(found.timezone)).date()
            last = first + timedelta(days=days - 1)
            return await uncovered(session, found.id, first, last, calendar), first, last

    missing, first, last = run(_check)
    _warn_unknown(calendar, first, last)
    if not missing:
        console.print(f"site {site}: every day off from {first} to {last} has a duty engineer all day")
        return
    console.print(
        f"site {site}: {len(missing)} day(s) off from {first} to {last} without a duty engineer all day:"
    )
    for day in missing:
        console.print(
            f"  {day.isoformat()} {WEEKDAYS[day.weekday()]} {_label(calendar.day(day))}", markup=False
        )
    raise typer.Exit(1)
