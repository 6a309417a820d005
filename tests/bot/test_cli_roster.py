"""``dutydesk roster import|show|check`` as a user runs them, on a fresh SQLite file."""

from __future__ import annotations

import pytest

from tests.bot.conftest import Cli

ROSTER = ("site", "start", "end", "engineer", "backup")
PEOPLE = [
    ("demo", "张工", "engineer", "13800000001", "", ""),
    ("demo", "李工", "engineer", "13800000002", "", ""),
    ("demo", "王主管", "supervisor", "13800000003", "", ""),
]
NATIONAL_DAY = [
    ("demo", "2026-10-01 00:00", "2026-10-04 00:00", "张工", "李工"),
    ("demo", "2026-10-04 00:00", "2026-10-08 00:00", "13800000002", ""),
]


@pytest.fixture
def cli(demo: Cli) -> Cli:
    """The site demo with two engineers (张工 the on-site one) and a supervisor."""
    demo.ok("import", "people", demo.write("people.csv", PEOPLE))
    return demo


def test_import_stores_utc_and_a_second_import_changes_nothing(cli: Cli) -> None:
    path = cli.write("roster.csv", NATIONAL_DAY, header=ROSTER)
    out = cli.ok("roster", "import", path)
    assert "2 rows imported: 2 shifts created, 0 updated, 0 unchanged" in out
    stored = cli.query(
        "SELECT s.starts_at, s.ends_at, e.name, b.name FROM duty_shift s "
        "JOIN person e ON e.id = s.engineer_id LEFT JOIN person b ON b.id = s.backup_id ORDER BY s.starts_at"
    )
    assert [(str(a)[:16], str(b)[:16], e, k) for a, b, e, k in stored] == [
        ("2026-09-30 16:00", "2026-10-03 16:00", "张工", "李工"),  # 00:00 in Shanghai is 16:00 UTC
        ("2026-10-03 16:00", "2026-10-07 16:00", "李工", None),
    ]
    assert "0 shifts created, 0 updated, 2 unchanged" in cli.ok("roster", "import", path)


def test_a_bad_file_is_refused_whole_with_row_numbers(cli: Cli) -> None:
    bad = [
        *NATIONAL_DAY,
        ("demo", "2026-10-07 00:00", "2026-10-09 00:00", "张工", ""),  # row 4: overlaps row 3
        ("demo", "2026-10-10 08:00", "2026-10-10 18:00", "王主管", ""),  # row 5: not an engineer
        ("demo", "2026-10-11 18:00", "2026-10-11 08:00", "李工", "李工"),  # row 6
    ]
    err = cli.refused("roster", "import", cli.write("roster.csv", bad, header=ROSTER))
    assert "(3 bad rows)" in err
    assert "row 4: (2026-10-07 00:00) overlaps row 3 (2026-10-04 00:00–2026-10-08 00:00)" in err
    assert "row 5: (2026-10-10 08:00) engineer '王主管' is not an engineer of site demo" in err
    assert "row 6: (2026-10-11 18:00) end 2026-10-11 08:00 is not after start" in err
    assert "the backup is the engineer (李工)" in err
    assert cli.query("SELECT count(*) FROM duty_shift") == [(0,)]


def test_show_prints_the_iso_week_with_holidays_make_up_days_and_shifts(cli: Cli) -> None:
    cli.ok("roster", "import", cli.write("roster.csv", NATIONAL_DAY, header=ROSTER))
    out = cli.ok("roster", "show", "--site", "demo", "--week", "2026-10-08")
    assert "Duty roster · demo (示例法院) · 2026-W41" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ 2026-")}
    assert list(lines) == [f"2026-10-{day:02d}" for day in range(5, 12)]  # Monday to Sunday
    assert "节假日 国庆节" in lines["2026-10-05"] and "10-04 00:00–10-08 00:00 李工" in lines["2026-10-05"]
    assert "工作日" in lines["2026-10-08"]
    assert "周六" in lines["2026-10-10"] and "调休上班 国庆节" in lines["2026-10-10"]
    assert "节假日 周末" in lines["2026-10-11"] and "uncovered" in lines["2026-10-11"]
    assert "working days: 张工" in out
    earlier = cli.ok("roster", "show", "--site", "demo", "--week", "2026-10-01")
    assert "10-01 00:00–10-04 00:00 张工 (备班 李工)" in earlier
    assert "Duty roster · demo" in cli.ok("roster", "show", "--site", "demo", "--week")  # this week


def test_check_lists_uncovered_days_off_and_fails(cli: Cli) -> None:
    cli.ok("roster", "import", cli.write("roster.csv", NATIONAL_DAY, header=ROSTER))
    code, out, _ = cli.run("roster", "check", "--site", "demo", "--from", "2026-09-27", "--days", "15")
    assert code == 1
    assert "2 day(s) off from 2026-09-27 to 2026-10-11 without a duty engineer all day:" in out
    # National Day is covered; 10-10 is a make-up working day (调休上班).
    assert out.splitlines()[1:] == ["  2026-09-27 周日 节假日 中秋", "  2026-10-11 周日 节假日 周末"]
    covered = cli.run("roster", "check", "--site", "demo", "--from", "2026-10-01", "--days", "7")
    assert covered[0] == 0 and "every day off from 2026-10-01 to 2026-10-07 has a duty engineer" in covered[1]


def test_check_takes_the_sites_own_calendar_and_warns_of_unknown_years(cli: Cli) -> None:
    own = cli.home / "court.toml"
    own.write_text(
        '[holidays]\ndates = ["2099-01-01"]\nnames = { "2099-01-01" = "元旦" }\n', encoding="utf-8"
    )
    code, out, err = cli.run(
        "roster", "check", "--site", "demo", "--from", "2098-12-31", "--days", "2", "--calendar", own
    )
    assert code == 1 and "2099-01-01 周四 节假日 元旦" in out
    assert "official holidays of 2098, 2099 are not known" in err and "Monday–Friday assumed" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["roster", "check", "--site", "nowhere"], 1, "no site 'nowhere'"),
        (["roster", "show", "--site", "demo", "--week", "10/08"], 1, "DATE '10/08': expected"),
        (
            ["roster", "check", "--site", "demo", "--calendar", "missing.toml"],
            2,
            "calendar refused: missing.toml",
        ),
    ],
)
def test_bad_input_is_refused(cli: Cli, args: list[str], code: int, message: str) -> None:
    result = cli.run(*args)
    assert result[0] == code and message in result[2]
