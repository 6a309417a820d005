"""Importing the duty roster: columns site, start, end, engineer, backup.

start and end are "YYYY-MM-DD HH:MM" in the site's local time; the shift covers [start, end).
engineer (required) and backup (optional) are given by phone or exact name of a person with
the engineer role at that site. A shift is recognised by (site, start, end): importing the
same file again changes nothing, and a row with the same times names new people for it. Every
row is checked before anything is written; one bad row refuses the whole file. Refused: end
not after start, unknown people, a backup equal to the engineer, and shifts overlapping
another row of the file or a stored shift.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.directory.rows import (
    ImportRejected,
    ImportResult,
    Progress,
    RowError,
    Tally,
    check_site,
    check_text,
)
from handlers.directory.tables import Row
from storage.enums import Role
from storage.models import Person, Site
from storage.repositories.people import members
from storage.repositories.roster import lock_site, shifts_between
from storage.repositories.sites import site_by_slug
from storage.roster_models import DutyShift

ROSTER_COLUMNS = ("site", "start", "end", "engineer", "backup")
TIME_FORMAT = "%Y-%m-%d %H:%M"
#: Also accepted: what an XLSX date-time cell reads as.
_TIME_FORMATS = (TIME_FORMAT, "%Y-%m-%d %H:%M:%S")


@dataclass
class _SiteRoster:
    """A site named in the file: its zone, engineers, and the shifts stored and accepted."""

    site: Site
    timezone: ZoneInfo
    engineers: Sequence[Person]
    #: (row, start, end) of every earlier row with valid times, faulty or not.
    spans: list[tuple[int, datetime, datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class _Shift:
    site_id: int
    starts_at: datetime
    ends_at: datetime
    engineer_id: int
    backup_id: int | None


async def import_roster(
    session: AsyncSession, rows: list[Row], now: datetime, progress: Progress | None = None
) -> ImportResult:
    """Check every row, then create the shifts (a shift with the same times gets the row's people)."""
    sites: dict[str, _SiteRoster | None] = {}
    accepted: list[_Shift] = []
    errors: list[RowError] = []
    for row in rows:
        reasons: list[str] = []
        roster = await check_site(reasons, row.cells, sites, lambda slug: _load_site(session, slug))
        start_text = check_text(reasons, row.cells, "start", 20, required=True)
        end_text = check_text(reasons, row.cells, "end", 20, required=True)
        engineer_text = check_text(reasons, row.cells, "engineer", 60, required=True)
        backup_text = check_text(reasons, row.cells, "backup", 60, required=False)
        shift = None
        if roster is not None:
            starts_at = _parse_time(reasons, "start", start_text, roster.timezone)
            ends_at = _parse_time(reasons, "end", end_text, roster.timezone)
            if starts_at and ends_at and ends_at <= starts_at:
                reasons.append(f"end {end_text} is not after start {start_text}")
            engineer = _engineer(reasons, "engineer", engineer_text, roster)
            backup = _engineer(reasons, "backup", backup_text, roster) if backup_text else None
            if engineer is not None and backup is not None and engineer.id == backup.id:
                reasons.append(f"the backup is the engineer ({engineer.name}): name someone else")
            if starts_at and ends_at and ends_at > starts_at:
                await _check_overlaps(session, reasons, roster, starts_at, ends_at)
                roster.spans.append((row.number, starts_at, ends_at))
                if not reasons and engineer is not None and engineer.id is not None:
                    assert roster.site.id is not None
                    backup_id = backup.id if backup is not None else None
                    shift = _Shift(roster.site.id, starts_at, ends_at, engineer.id, backup_id)
        if shift is None:
            errors.append(RowError(row.number, f"({start_text or '?'}) " + "; ".join(reasons)))
        else:
            accepted.append(shift)
        if progress:
            progress()
    if errors:
        raise ImportRejected(errors)
    return await _write(session, accepted, now, len(rows))


async def _load_site(session: AsyncSession, slug: str) -> _SiteRoster | None:
    site = await site_by_slug(session, slug)
    if site is None or site.id is None:
        return None
    await lock_site(session, site.id)  # no other roster import of this site until we commit
    return _SiteRoster(site, ZoneInfo(site.timezone), await members(session, site.id, Role.ENGINEER))


def _parse_time(reasons: list[str], column: str, text: str, timezone: ZoneInfo) -> datetime | None:
    if not text:
        return None
    for fmt in _TIME_FORMATS:
        try:
            # The site's local time: the zone is attached right away.
            return datetime.strptime(text, fmt).replace(tzinfo=timezone).astimezone(UTC)
        except ValueError:
            continue
    reasons.append(f'{column} {text!r} is not a time (expected "YYYY-MM-DD HH:MM", local time)')
    return None


def _normalise_phone(value: str) -> str:
    return re.sub(r"[\s-]", "", value)


def _engineer(reasons: list[str], column: str, text: str, roster: _SiteRoster) -> Person | None:
    """The site's engineer with this phone or exact name; a reason if none or several."""
    if not text:
        return None
    phone = _normalise_phone(text)
    by_phone = [p for p in roster.engineers if p.phone and p.phone == phone]
    found = by_phone or [p for p in roster.engineers if p.name == text]
    if len(found) == 1:
        return found[0]
    if found:
        reasons.append(f"{column} {text!r}: several engineers have this name, give the phone")
    else:
        reasons.append(
            f"{column} {text!r} is not an engineer of site {roster.site.slug} (give the phone or "
            "exact name of a person with the engineer role there)"
        )
    return None


def _span(starts_at: datetime, ends_at: datetime, timezone: ZoneInfo) -> str:
    return f"{starts_at.astimezone(timezone):%Y-%m-%d %H:%M}–{ends_at.astimezone(timezone):%Y-%m-%d %H:%M}"


async def _check_overlaps(
    session: AsyncSession,
    reasons: list[str],
    roster: _SiteRoster,
    starts_at: datetime,
    ends_at: datetime,
) -> None:
    """A reason for each earlier row of the file and each stored shift overlapping [start, end).

    A stored shift with exactly these times is the same shift, imported again: not an overlap.
    """
    for row, other_start, other_end in roster.spans:
        if other_start < ends_at and other_end > starts_at:
            reasons.append(f"overlaps row {row} ({_span(other_start, other_end, roster.timezone)})")
    assert roster.site.id is not None
    for stored in await shifts_between(session, roster.site.id, starts_at, ends_at):
        if (stored.starts_at, stored.ends_at) != (starts_at, ends_at):
            span = _span(stored.starts_at, stored.ends_at, roster.timezone)
            reasons.append(f"overlaps the stored shift {span}")


async def _write(session: AsyncSession, accepted: list[_Shift], now: datetime, rows: int) -> ImportResult:
    tally = Tally(rows)
    for item in accepted:
        stored = await shifts_between(session, item.site_id, item.starts_at, item.ends_at)
        shift = next((s for s in stored if s.starts_at == item.starts_at), None)
        is_new = shift is None
        if shift is None:
            shift = DutyShift(
                site_id=item.site_id,
                starts_at=item.starts_at,
                ends_at=item.ends_at,
                engineer_id=item.engineer_id,
                backup_id=item.backup_id,
                created_at=now,
            )
        changed = (shift.engineer_id, shift.backup_id) != (item.engineer_id, item.backup_id)
        shift.engineer_id, shift.backup_id = item.engineer_id, item.backup_id
        session.add(shift)
        tally.count(is_new, changed)
    await session.flush()
    return tally.result()
