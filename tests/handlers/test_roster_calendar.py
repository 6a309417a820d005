"""The working-day calendar: official holidays and make-up workdays, site overrides, unknown years."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import chinese_calendar  # type: ignore[import-untyped]
import pytest

from handlers.roster.calendar import CalendarError, DayKind, WorkCalendar, load_calendar, parse_calendar

OFFICIAL = WorkCalendar()


def test_national_day_is_a_holiday() -> None:
    day = OFFICIAL.day(date(2026, 10, 1))
    assert (day.kind, day.name, day.working, day.official) == (DayKind.HOLIDAY, "国庆节", False, True)
    assert not OFFICIAL.is_working_day(date(2026, 10, 5))  # a Monday inside the holiday


def test_a_make_up_saturday_is_a_working_day() -> None:
    makeup = date(2026, 10, 10)
    # The package itself says so: a Saturday on which people work (调休上班) for National Day.
    assert makeup.weekday() == 5 and chinese_calendar.is_workday(makeup)
    weekends_worked = [
        d for d in chinese_calendar.get_workdays(date(2026, 1, 1), date(2026, 12, 31)) if d.weekday() >= 5
    ]
    assert makeup in weekends_worked
    day = OFFICIAL.day(makeup)
    assert (day.kind, day.name, day.working) == (DayKind.MAKEUP_WORKDAY, "国庆节", True)
    assert all(OFFICIAL.is_working_day(d) for d in weekends_worked)


def test_an_ordinary_saturday_is_not_and_a_tuesday_is() -> None:
    saturday = OFFICIAL.day(date(2026, 10, 17))
    assert (saturday.kind, saturday.name, saturday.working) == (DayKind.WEEKEND, None, False)
    tuesday = OFFICIAL.day(date(2026, 10, 13))
    assert (tuesday.kind, tuesday.working) == (DayKind.WORKDAY, True)


def test_an_override_file_adds_a_holiday_and_a_workday(tmp_path: Path) -> None:
    path = tmp_path / "court.toml"
    path.write_text(
        '[holidays]\ndates = ["2026-12-31", 2026-12-30]\nnames = { "2026-12-31" = "年终盘点" }\n\n'
        '[workdays]\ndates = ["2026-12-27"]\n',
        encoding="utf-8",
    )
    calendar = load_calendar(path)
    closed = calendar.day(date(2026, 12, 31))  # a Thursday
    assert (closed.kind, closed.name, closed.working, closed.overridden) == (
        DayKind.HOLIDAY,
        "年终盘点",
        False,
        True,
    )
    assert not calendar.is_working_day(date(2026, 12, 30))  # a TOML date works too
    worked = calendar.day(date(2026, 12, 27))  # a Sunday
    assert (worked.kind, worked.working) == (DayKind.MAKEUP_WORKDAY, True)
    assert calendar.is_working_day(date(2026, 12, 29)) and not calendar.is_working_day(date(2026, 12, 26))


def test_an_unknown_year_falls_back_to_monday_to_friday_and_says_so() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2099, 1, 1))
    friday, saturday = OFFICIAL.day(date(2099, 1, 2)), OFFICIAL.day(date(2099, 1, 3))
    assert (friday.kind, friday.working, friday.official) == (DayKind.WORKDAY, True, False)
    assert (saturday.kind, saturday.working, saturday.official) == (DayKind.WEEKEND, False, False)
    assert OFFICIAL.unknown_years(date(2098, 12, 30), date(2099, 1, 5)) == [2098, 2099]
    assert OFFICIAL.unknown_years(date(2026, 1, 1), date(2026, 12, 31)) == []
    # A site's file can name the holidays of such a year meanwhile.
    own = parse_calendar('[holidays]\ndates = ["2099-01-01"]\n')
    assert not own.is_working_day(date(2099, 1, 1))
    assert not own.day(date(2099, 1, 1)).official


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[holiday]\ndates = []\n", "holiday"),
        ('[holidays]\ndates = ["2026-13-01"]\n', "holidays.dates"),
        ('[holidays]\ndate = ["2026-12-31"]\n', "holidays.date"),
        ('[holidays]\ndates = "2026-12-31"\n', "holidays.dates"),
        ('[holidays]\ndates = ["2026-12-31"]\n[workdays]\ndates = ["2026-12-31"]\n', "workdays.dates"),
        ('[workdays]\ndates = ["2026-12-27"]\nnames = { "2026-12-28" = "x" }\n', "workdays.names"),
        ("[holidays\n", "(file)"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(CalendarError) as refused:
        parse_calendar(text, "court.toml")
    assert refused.value.key == key
    assert str(refused.value).startswith(f"court.toml: {key}: ")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match=r"missing\.toml: \(file\)"):
        load_calendar(tmp_path / "missing.toml")
