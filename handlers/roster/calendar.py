"""Which dates are working days at a site: the mainland China calendar, overridable per site.

The official calendar comes from the ``chinesecalendar`` package rather than ``holidays``:
besides the public holidays it carries the make-up working days (调休上班), the weekends on
which people work because a holiday was stretched, and it is updated from the State
Council's notice every year. A plain weekday rule, or a holiday list without those days, is
wrong several times a year.

``chinesecalendar`` knows a fixed span of years and raises NotImplementedError outside it
(typically the next year, until its notice is published and the package updated). For such a
year the calendar falls back to Monday-Friday and says so: every Day it returns carries
``official``, and ``WorkCalendar.unknown_years`` names the years a range depends on, so that
a command or a report can warn that the year's holidays are not known yet.

A site may override days with a TOML file (its own closures, a year the package lacks)::

    [holidays]
    dates = ["2026-12-31"]
    names = { "2026-12-31" = "年终盘点" }   # optional

    [workdays]
    dates = ["2026-12-27"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import chinese_calendar  # type: ignore[import-untyped]


class CalendarError(ValueError):
    """An override file that cannot be used; the message names the file, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


class DayKind(StrEnum):
    """What a date is at the site."""

    WORKDAY = "workday"  # 工作日: an ordinary Monday-Friday
    MAKEUP_WORKDAY = "makeup_workday"  # 调休上班: worked although a weekend (or holiday)
    HOLIDAY = "holiday"  # 节假日: a public holiday, or a day off the site's file names
    WEEKEND = "weekend"  # an ordinary Saturday or Sunday


@dataclass(frozen=True)
class Day:
    """One date as the calendar sees it."""

    date: date
    kind: DayKind
    #: The holiday a day belongs to (国庆节, ...; a make-up workday names the holiday it pays
    #: for), or the override file's name; None for ordinary days.
    name: str | None = None
    #: False when the official calendar does not know the year and Monday-Friday was assumed.
    official: bool = True
    #: True when the site's override file decided this day.
    overridden: bool = False

    @property
    def working(self) -> bool:
        """Whether the client works that day (working hours apply)."""
        return self.kind in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY)


_CHINESE_NAMES = {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}


def _official(day: date) -> tuple[bool, str | None] | None:
    """(is a holiday, its Chinese name) from chinesecalendar; None if it does not know the year."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return bool(is_holiday), (_CHINESE_NAMES.get(name, name) if name else None)


def _is_weekend(day: date) -> bool:
    return day.weekday() >= 5


def official_years() -> tuple[int, int]:
    """The first and last year the installed chinesecalendar knows."""
    years = [d.year for d in chinese_calendar.holidays]
    return min(years), max(years)


@dataclass(frozen=True)
class WorkCalendar:
    """The official calendar with a site's overrides (dates off, dates worked)."""

    holidays: Mapping[date, str | None] = field(default_factory=dict)
    workdays: Mapping[date, str | None] = field(default_factory=dict)

    def day(self, day: date) -> Day:
        """What ``day`` is at the site."""
        official = _official(day)
        known = official is not None
        if day in self.holidays:
            name = self.holidays[day] or (official[1] if official else None)
            return Day(day, DayKind.HOLIDAY, name, known, overridden=True)
        if day in self.workdays:
            off_anyway = official[0] if official is not None else _is_weekend(day)
            kind = DayKind.MAKEUP_WORKDAY if off_anyway else DayKind.WORKDAY
            name = self.workdays[day] or (official[1] if official else None)
            return Day(day, kind, name, known, overridden=True)
        if official is None:
            return Day(day, DayKind.WEEKEND if _is_weekend(day) else DayKind.WORKDAY, official=False)
        is_holiday, name = official
        if is_holiday:
            kind = DayKind.HOLIDAY if name else DayKind.WEEKEND
            return Day(day, kind, name)
        return Day(day, DayKind.MAKEUP_WORKDAY if _is_weekend(day) else DayKind.WORKDAY, name)

    def is_working_day(self, day: date) -> bool:
        """Whether the client works on ``day``."""
        return self.day(day).working

    def days(self, start: date, end: date) -> Iterator[Day]:
        """Every day from ``start`` to ``end``, both included."""
        current = start
        while current <= end:
            yield self.day(current)
            current += timedelta(days=1)

    def unknown_years(self, start: date, end: date) -> list[int]:
        """The years of ``start``..``end`` the official calendar does not know (Mon-Fri assumed)."""
        return sorted({d.date.year for d in self.days(start, end) if not d.official})


def load_calendar(path: Path | None = None) -> WorkCalendar:
    """The official calendar with the overrides of the TOML file at ``path`` (None: none)."""
    if path is None:
        return WorkCalendar()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError(str(path), "(file)", exc.strerror or str(exc)) from exc
    return parse_calendar(text, str(path))


def parse_calendar(text: str, source: str = "(calendar)") -> WorkCalendar:
    """The official calendar with the overrides of TOML ``text`` (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(source, "(file)", f"not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"holidays", "workdays"})
    if unknown:
        raise CalendarError(source, unknown[0], "unknown section (expected [holidays] and [workdays])")
    holidays = _section(data.get("holidays", {}), source, "holidays")
    workdays = _section(data.get("workdays", {}), source, "workdays")
    both = sorted(set(holidays) & set(workdays))
    if both:
        raise CalendarError(source, "workdays.dates", f"{both[0]} is also listed under [holidays]")
    return WorkCalendar(holidays, workdays)


def _section(section: Any, source: str, key: str) -> dict[date, str | None]:
    if not isinstance(section, dict):
        raise CalendarError(source, key, "expected a table with dates = [...]")
    unknown = sorted(set(section) - {"dates", "names"})
    if unknown:
        raise CalendarError(source, f"{key}.{unknown[0]}", "unknown key (expected dates and names)")
    dates = section.get("dates", [])
    if not isinstance(dates, list):
        raise CalendarError(source, f"{key}.dates", 'expected a list like ["2026-12-31"]')
    found: dict[date, str | None] = {}
    for value in dates:
        found[_date(value, source, f"{key}.dates")] = None
    names = section.get("names", {})
    if not isinstance(names, dict):
        raise CalendarError(source, f"{key}.names", 'expected a table like { "2026-12-31" = "年终盘点" }')
    for raw, name in names.items():
        day = _date(raw, source, f"{key}.names")
        if day not in found:
            raise CalendarError(source, f"{key}.names", f"{day} is not in {key}.dates")
        if not isinstance(name, str) or not name.strip():
            raise CalendarError(source, f"{key}.names.{raw}", "expected a non-empty name")
        found[day] = name.strip()
    return found


def _date(value: object, source: str, key: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # a TOML local date: dates = [2026-12-31]
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalendarError(source, key, f'bad date {value!r}: expected "YYYY-MM-DD"')
