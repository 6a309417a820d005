"""The duty roster on both engines: who is on duty, which days off are uncovered, the import."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, func, select

from handlers.directory.rows import ImportRejected, ImportResult
from handlers.directory.tables import Row
from handlers.roster.calendar import WorkCalendar, parse_calendar
from handlers.roster.roster import (
    NOBODY,
    OFFICE_HOURS,
    Duty,
    WorkingHours,
    on_duty,
    roster_days,
    uncovered,
)
from handlers.roster.roster_import import ROSTER_COLUMNS, import_roster
from storage.engine import transaction
from storage.models import Person
from storage.roster_models import DutyShift
from tests.conftest import Database, World

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICIAL = WorkCalendar()


def local(text: str) -> datetime:
    """A "YYYY-MM-DD HH:MM" time in Shanghai, as the aware UTC time stored."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


async def add_shift(
    db: Database, world: World, start: str, end: str, engineer: int, backup: int | None
) -> None:
    """Store one shift of the demo site."""
    async with transaction(db.factory) as session:
        assert world.site.id is not None
        session.add(
            DutyShift(
                site_id=world.site.id,
                starts_at=local(start),
                ends_at=local(end),
                engineer_id=engineer,
                backup_id=backup,
                created_at=local("2026-09-01 09:00"),
            )
        )


async def duty(
    db: Database,
    world: World,
    at: str,
    calendar: WorkCalendar | None = None,
    hours: WorkingHours = OFFICE_HOURS,
) -> Duty:
    """Who is on duty at the demo site at local time ``at``."""
    async with transaction(db.factory) as session:
        assert world.site.id is not None
        return await on_duty(session, world.site.id, local(at), calendar=calendar, hours=hours)


async def test_a_shift_wins_even_in_working_hours(db: Database, world: World) -> None:
    await add_shift(db, world, "2026-10-01 00:00", "2026-10-02 00:00", world.backup_engineer, world.engineer)
    await add_shift(db, world, "2026-12-01 08:00", "2026-12-01 20:00", world.backup_engineer, None)
    expected = Duty(world.backup_engineer, world.engineer, "roster")
    assert await duty(db, world, "2026-10-01 00:00") == expected  # start included
    assert await duty(db, world, "2026-10-01 03:00") == expected
    assert await duty(db, world, "2026-10-02 00:00") == NOBODY  # end excluded: a holiday night
    assert await duty(db, world, "2026-12-01 09:00") == Duty(world.backup_engineer, None, "roster")


async def test_working_hours_default_to_the_on_site_engineer(db: Database, world: World) -> None:
    on_site = Duty(world.engineer, None, "working_hours")  # the lowest engineer id, no backup
    assert await duty(db, world, "2026-12-01 08:30") == on_site  # a Tuesday
    assert await duty(db, world, "2026-12-01 11:59") == on_site
    assert await duty(db, world, "2026-12-01 12:30") == NOBODY  # lunch
    assert await duty(db, world, "2026-12-01 14:00") == on_site
    assert await duty(db, world, "2026-12-01 17:30") == NOBODY
    assert await duty(db, world, "2026-10-10 09:00") == on_site  # a make-up Saturday (调休上班)
    assert await duty(db, world, "2026-10-17 09:00") == NOBODY  # an ordinary Saturday
    assert await duty(db, world, "2026-10-08 10:00") == on_site  # the Thursday after National Day
    evening = WorkingHours(((time(9), time(21)),))
    assert await duty(db, world, "2026-12-01 20:00", hours=evening) == on_site
    closed = parse_calendar('[holidays]\ndates = ["2026-12-01"]\n')
    assert await duty(db, world, "2026-12-01 09:00", calendar=closed) == NOBODY


async def test_nobody_at_night_on_a_holiday_without_a_shift(db: Database, world: World) -> None:
    assert await duty(db, world, "2026-10-03 02:00") == NOBODY
    assert await duty(db, world, "2026-10-03 10:00") == NOBODY  # working hours, but a holiday
    async with transaction(db.factory) as session:
        with pytest.raises(ValueError, match="naive"):
            await on_duty(session, world.site.id or 0, datetime(2026, 10, 3, 2))


async def test_uncovered_days_off_are_flagged_before_they_happen(db: Database, world: World) -> None:
    # Planned on 2026-09-20 (a make-up Sunday) for the next three weeks.
    await add_shift(db, world, "2026-09-30 20:00", "2026-10-02 08:00", world.engineer, world.backup_engineer)
    await add_shift(db, world, "2026-10-02 08:00", "2026-10-04 00:00", world.backup_engineer, None)
    await add_shift(db, world, "2026-10-04 00:00", "2026-10-04 12:00", world.engineer, None)
    await add_shift(db, world, "2026-10-04 12:00", "2026-10-05 00:00", world.backup_engineer, None)
    await add_shift(db, world, "2026-10-05 00:00", "2026-10-05 23:00", world.engineer, None)  # an hour short
    await add_shift(db, world, "2026-10-06 00:00", "2026-10-08 00:00", world.engineer, None)
    assert world.site.id is not None
    async with transaction(db.factory) as session:
        found = await uncovered(session, world.site.id, date(2026, 9, 20), date(2026, 10, 11), OFFICIAL)
        days = await roster_days(session, world.site.id, date(2026, 10, 4), date(2026, 10, 4), OFFICIAL)
        other = await uncovered(
            session, world.other_site.id or 0, date(2026, 10, 1), date(2026, 10, 1), OFFICIAL
        )
    assert found == [
        date(2026, 9, 25),  # Mid-autumn, Friday to Sunday: nobody named yet
        date(2026, 9, 26),
        date(2026, 9, 27),
        date(2026, 10, 5),  # an hour short of midnight
        date(2026, 10, 11),  # an ordinary Sunday
    ]
    assert date(2026, 9, 20) not in found and date(2026, 10, 10) not in found  # make-up workdays
    assert [len(d.shifts) for d in days] == [2] and days[0].covered
    assert other == [date(2026, 10, 1)]  # shifts belong to one site


async def test_a_site_file_holiday_needs_cover_too(db: Database, world: World) -> None:
    calendar = parse_calendar('[holidays]\ndates = ["2026-12-31"]\n')
    async with transaction(db.factory) as session:
        found = await uncovered(session, world.site.id or 0, date(2026, 12, 28), date(2026, 12, 31), calendar)
    assert found == [date(2026, 12, 31)]


def rows(*cells: tuple[str, ...]) -> list[Row]:
    """Spreadsheet rows numbered as the sheet shows them (the header is row 1)."""
    return [
        Row(number, dict(zip(ROSTER_COLUMNS, values, strict=True))) for number, values in enumerate(cells, 2)
    ]


async def run_import(db: Database, table: list[Row]) -> ImportResult:
    async with transaction(db.factory) as session:
        return await import_roster(session, table, local("2026-09-01 09:00"))


async def shift_count(db: Database) -> int:
    async with transaction(db.factory) as session:
        return (await session.exec(select(func.count(col(DutyShift.id))))).one()


@pytest.fixture
async def phones(db: Database, world: World) -> World:
    """The seeded world, the backup engineer with a phone (engineers are named by phone or name)."""
    async with transaction(db.factory) as session:
        person = await session.get(Person, world.backup_engineer)
        assert person is not None
        person.phone = "13800000002"
        session.add(person)
    return world


async def test_import_creates_then_recognises_and_updates_shifts(db: Database, phones: World) -> None:
    world = phones
    table = rows(
        ("demo", "2026-10-01 00:00", "2026-10-04 00:00", "engineer", "138-0000-0002"),
        ("demo", "2026-10-04 00:00", "2026-10-08 00:00:00", "13800000002", ""),
    )
    assert await run_import(db, table) == ImportResult(rows=2, created=2, updated=0, unchanged=0)
    assert await run_import(db, table) == ImportResult(rows=2, created=0, updated=0, unchanged=2)
    assert await duty(db, world, "2026-10-05 03:00") == Duty(world.backup_engineer, None, "roster")
    changed = rows(("demo", "2026-10-04 00:00", "2026-10-08 00:00", "13800000002", "engineer"))
    assert await run_import(db, changed) == ImportResult(rows=1, created=0, updated=1, unchanged=0)
    assert await duty(db, world, "2026-10-05 03:00") == Duty(world.backup_engineer, world.engineer, "roster")
    async with transaction(db.factory) as session:
        assert (
            await uncovered(session, world.site.id or 0, date(2026, 10, 1), date(2026, 10, 7), OFFICIAL) == []
        )
    assert await shift_count(db) == 2


async def test_import_is_all_or_nothing_naming_each_bad_row(db: Database, phones: World) -> None:
    await add_shift(db, phones, "2026-12-24 18:00", "2026-12-25 08:00", phones.engineer, None)
    table = rows(
        ("demo", "2026-10-01 00:00", "2026-10-04 00:00", "engineer", "backup_engineer"),  # 2: fine
        ("demo", "2026-10-03 00:00", "2026-10-05 00:00", "backup_engineer", ""),  # 3: overlaps row 2
        ("demo", "2026-10-06 00:00", "2026-10-07 00:00", "supervisor", ""),  # 4: not an engineer
        ("demo", "2026-10-08 00:00", "2026-10-07 00:00", "engineer", ""),  # 5: end before start
        ("demo", "2026-10-09 00:00", "2026-10-10 00:00", "engineer", "engineer"),  # 6: backup = engineer
        ("demo", "2026-12-25 00:00", "2026-12-26 00:00", "engineer", ""),  # 7: overlaps a stored shift
        ("demo", "2026-10-12 00:00", "2026-10-13", "nobody", ""),  # 8: bad end, unknown person
        ("other", "2026-10-01 00:00", "2026-10-02 00:00", "engineer", ""),  # 9: no engineer there
        ("nowhere", "2026-10-01 00:00", "2026-10-02 00:00", "engineer", ""),  # 10: no such site
        ("demo", "2026-10-20 00:00", "2026-10-21 00:00", "", "stranger"),  # 11: engineer missing
    )
    with pytest.raises(ImportRejected) as refused:
        await run_import(db, table)
    reasons = {error.row: error.reason for error in refused.value.errors}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "overlaps row 2 (2026-10-01 00:00–2026-10-04 00:00)" in reasons[3]
    assert "'supervisor' is not an engineer of site demo" in reasons[4]
    assert "end 2026-10-07 00:00 is not after start 2026-10-08 00:00" in reasons[5]
    assert "the backup is the engineer" in reasons[6]
    assert "overlaps the stored shift 2026-12-24 18:00–2026-12-25 08:00" in reasons[7]
    assert "end '2026-10-13' is not a time" in reasons[8] and "'nobody' is not an engineer" in reasons[8]
    assert "is not an engineer of site other" in reasons[9]
    assert "site 'nowhere' does not exist" in reasons[10]
    assert "engineer is empty" in reasons[11] and "'stranger' is not an engineer" in reasons[11]
    assert str(refused.value.errors[0]).startswith("row 3: (2026-10-03 00:00) ")
    assert await shift_count(db) == 1  # nothing written, the stored shift untouched
