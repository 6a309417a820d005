"""Who is on duty at a site at a given moment, and which days off still lack a duty engineer.

The hotline is answered 7×24, holidays included (seed 9(2)). A shift of the roster names the
duty engineer and a backup for a period; during the client's working hours the site's
on-site engineer answers by default; outside both nobody is named, which is exactly what
``uncovered`` looks for in advance on the days off (holidays and weekends by the calendar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.roster.calendar import Day, WorkCalendar
from storage.enums import Role
from storage.models import Person, Site
from storage.repositories.people import members
from storage.repositories.roster import shift_at, shifts_between
from storage.roster_models import DutyShift

DutySource = Literal["roster", "working_hours", "none"]


@dataclass(frozen=True)
class Duty:
    """Who answers at a moment, and why.

    ``source`` is "roster" (a shift covers the moment), "working_hours" (the client's working
    hours on a working day: the site's on-site engineer, no backup) or "none" (nobody named;
    both ids are None).
    """

    engineer_id: int | None
    backup_id: int | None
    source: DutySource


NOBODY = Duty(None, None, "none")


@dataclass(frozen=True)
class WorkingHours:
    """The client's working hours on a working day, local time, each period [start, end)."""

    periods: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))

    def contains(self, moment: time) -> bool:
        """Whether the local time of day ``moment`` falls in a period."""
        return any(start <= moment < end for start, end in self.periods)


#: 08:30-12:00 and 14:00-17:30, the default.
OFFICE_HOURS = WorkingHours()


@dataclass(frozen=True)
class RosterDay:
    """One local day of a site: what the calendar says and the shifts overlapping it."""

    day: Day
    shifts: tuple[DutyShift, ...]
    #: Shifts cover the whole day, 00:00-24:00 local time, without a gap.
    covered: bool


async def site_of(session: AsyncSession, site_id: int) -> Site:
    """The site (for its time zone); LookupError if there is none."""
    site = await session.get(Site, site_id)
    if site is None:
        raise LookupError(f"no site with id {site_id}")
    return site


async def default_engineer(session: AsyncSession, site_id: int) -> Person | None:
    """The site's on-site engineer: the engineer with the lowest person id."""
    engineers = await members(session, site_id, Role.ENGINEER)
    return engineers[0] if engineers else None


async def on_duty(
    session: AsyncSession,
    site_id: int,
    at: datetime,
    *,
    calendar: WorkCalendar | None = None,
    hours: WorkingHours = OFFICE_HOURS,
    site: Site | None = None,
    engineers: Sequence[int] | None = None,
) -> Duty:
    """Who answers at ``at``: the covering shift; else, in working hours, the on-site engineer.

    ``site`` and ``engineers`` (the site's engineers' ids, lowest first) spare the queries
    when the caller has them.
    """
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: give a timezone-aware time")
    shift = await shift_at(session, site_id, at)
    if shift is not None:
        return Duty(shift.engineer_id, shift.backup_id, "roster")
    site = site or await site_of(session, site_id)
    local = at.astimezone(ZoneInfo(site.timezone))
    if (calendar or WorkCalendar()).is_working_day(local.date()) and hours.contains(local.time()):
        if engineers is None:
            engineer = await default_engineer(session, site_id)
            engineers = [] if engineer is None or engineer.id is None else [engineer.id]
        if engineers:
            return Duty(engineers[0], None, "working_hours")
    return NOBODY


def day_bounds(day: date, timezone: ZoneInfo) -> tuple[datetime, datetime]:
    """Local 00:00 of ``day`` and of the next day, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=timezone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _covers(shifts: Sequence[DutyShift], start: datetime, end: datetime) -> bool:
    """Whether ``shifts`` (sorted by start) cover [start, end) without a gap."""
    reach = start
    for shift in shifts:
        if shift.starts_at > reach:
            return False
        reach = max(reach, shift.ends_at)
        if reach >= end:
            return True
    return reach >= end


async def roster_days(
    session: AsyncSession, site_id: int, start: date, end: date, calendar: WorkCalendar
) -> list[RosterDay]:
    """Every local day from ``start`` to ``end`` (both included) with its shifts."""
    site = await site_of(session, site_id)
    timezone = ZoneInfo(site.timezone)
    first, _ = day_bounds(start, timezone)
    _, last = day_bounds(end, timezone)
    stored = await shifts_between(session, site_id, first, last)
    found = []
    for day in calendar.days(start, end):
        lo, hi = day_bounds(day.date, timezone)
        overlapping = tuple(s for s in stored if s.starts_at < hi and s.ends_at > lo)
        found.append(RosterDay(day, overlapping, _covers(overlapping, lo, hi)))
    return found


async def uncovered(
    session: AsyncSession, site_id: int, start: date, end: date, calendar: WorkCalendar
) -> list[date]:
    """The days off (holidays and weekends by ``calendar``) from ``start`` to ``end``, both
    included, that shifts do not cover from 00:00 to 24:00 local time."""
    days = await roster_days(session, site_id, start, end, calendar)
    return [d.day.date for d in days if not d.day.working and not d.covered]
