"""``dutydesk import people|assets FILE`` as a user runs it: in-process through the typer app,
against a fresh SQLite file, with the database read back through the sqlite3 module.

A refused file must leave the database exactly as it was (all or nothing), and name each bad
row by its spreadsheet number (the header is row 1).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.bot.conftest import Cells, Cli

DEMO_DATA = Path(__file__).resolve().parents[1] / "data"
PEOPLE = ("site", "name", "role", "phone", "telegram_id", "wecom_userid")
ASSETS = ("site", "subsystem", "code", "name", "location", "model", "serial")
PEOPLE_TABLES = ("person", "membership", "chat_identity")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


WANG = ("demo", "王晓丽", "reporter", "13800001001", "10001", "wangxiaoli")
QIAN = ("demo", "钱七", "reporter", "13900000002", "20002", "qianqi")
SWITCH = ("demo", "计算机网络", "SW-CORE-01", "核心交换机", "机房A01", "华为 S7706", "SN001")


def count(cli: Cli, table: str) -> int:
    """How many rows ``table`` holds."""
    return int(str(cli.query(f"SELECT count(*) FROM {table}")[0][0]))


def grouped(cli: Cli, table: str, column: str) -> dict[object, object]:
    """Row counts of ``table`` by ``column``."""
    return {key: n for key, n in cli.query(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")}


def dump(cli: Cli, tables: Sequence[str] = PEOPLE_TABLES) -> dict[str, list[tuple[object, ...]]]:
    """Every row of ``tables``: equal dumps mean the content did not change."""
    return {table: cli.query(f"SELECT * FROM {table} ORDER BY id") for table in tables}


@pytest.fixture
def cli(demo: Cli) -> Cli:
    """A fresh directory and database with the site ``demo`` added."""
    return demo


def demo_file(name: str) -> Path:
    """A file of the demo data shipped with the tests."""
    return DEMO_DATA / name


def save_xlsx(path: Path, rows: Sequence[Cells], *, doubles: bool = False) -> Path:
    """A workbook of ``rows``; ``doubles`` stores whole numbers as ``10001.0``, as some tools do."""
    workbook = Workbook()
    for row in rows:
        workbook.active.append(list(row))
    workbook.save(path)
    if doubles:
        with zipfile.ZipFile(path) as old:
            parts = {name: old.read(name) for name in old.namelist()}
        sheet = "xl/worksheets/sheet1.xml"
        parts[sheet] = re.sub(rb"<v>(\d+)</v>", rb"<v>\1.0</v>", parts[sheet])
        with zipfile.ZipFile(path, "w") as new:
            for name, data in parts.items():
                new.writestr(name, data)
    return path


# people: the demo file, all or nothing, reasons


def test_demo_people_import_and_again_changes_nothing(cli: Cli) -> None:
    people = demo_file("people.csv")
    assert "17 rows imported: 17 people created, 0 updated, 0 unchanged" in cli.ok("import", "people", people)
    assert count(cli, "person") == count(cli, "membership") == 17
    assert grouped(cli, "chat_identity", "channel") == {"telegram": 17, "wecom": 17}
    roles = {"reporter": 12, "engineer": 3, "supervisor": 1, "manager": 1}
    assert grouped(cli, "membership", "role") == roles
    wang = "SELECT p.phone, c.channel, c.external_id FROM person p JOIN chat_identity c ON c.person_id = p.id"
    assert sorted(cli.query(f"{wang} WHERE p.name = ?", "王晓丽")) == [
        ("13800001001", "telegram", "10001"),
        ("13800001001", "wecom", "wangxiaoli"),
    ]
    before = dump(cli)
    assert "17 rows imported: 0 people created, 0 updated, 17 unchanged" in cli.ok("import", "people", people)
    assert dump(cli) == before


@pytest.mark.parametrize("preloaded", [False, True], ids=["empty site", "after a good import"])
def test_one_bad_row_refuses_the_whole_people_file(cli: Cli, preloaded: bool) -> None:
    if preloaded:
        cli.ok("import", "people", cli.write("good.csv", [WANG, QIAN]))
    before = dump(cli)
    rows: list[Cells] = [
        ("demo", "王晓丽", "supervisor", "13800001001", "10001", "wang.xl"),  # a new role and wecom id
        ("demo", "赵六", "engineer", "13900000003", "20003", "zhaoliu"),
        ("demo", "孙八", "boss", "13900000004", "", ""),
    ]
    err = cli.refused("import", "people", cli.write("bad.csv", rows))
    assert "(1 bad row)" in err
    assert "row 4: (孙八) role 'boss' is not one of reporter, engineer, supervisor, manager" in err
    assert "row 2" not in err and "row 3" not in err
    assert dump(cli) == before
    assert count(cli, "person") == (2 if preloaded else 0)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        pytest.param(
            ("nowhere", "赵六", "reporter", "13900000003", "", ""),
            "site 'nowhere' does not exist",
            id="unknown site",
        ),
        pytest.param(("demo", "", "reporter", "13900000003", "", ""), "(?) name is empty", id="empty name"),
        pytest.param(
            ("demo", "赵六", "Boss", "13900000003", "", ""),
            "role 'boss' is not one of reporter, engineer",
            id="unknown role",
        ),
        pytest.param(
            ("demo", "赵六", "reporter", "", "@zhaoliu", ""),
            "telegram_id '@zhaoliu' is not valid",
            id="telegram not numeric",
        ),
        pytest.param(
            ("demo", "赵六", "reporter", "", "", "赵六"),
            "wecom_userid '赵六' is not valid",
            id="wecom in Chinese",
        ),
        pytest.param(
            ("demo", "赵六", "reporter", "138x", "", ""),
            "phone '138x' is not valid (digits)",
            id="phone with letters",
        ),
        pytest.param(
            ("demo", "赵六", "reporter", "", "", ""),
            "give a phone, telegram_id or wecom_userid",
            id="no contact at all",
        ),
        pytest.param(
            ("demo", "赵六", "reporter", "", "20002", ""),
            "these contact details belong to 钱七 (in row 2)",
            id="telegram of another row",
        ),
        pytest.param(
            ("demo", "赵六", "reporter", "", "10001", ""),
            "belong to 王晓丽 (already registered)",
            id="telegram in database",
        ),
        pytest.param(
            ("demo", "钱七", "reporter", "13900000002", "10001", ""),
            "belong to different people",
            id="two people in one row",
        ),
    ],
)
def test_each_bad_people_row_is_named_with_its_reason(cli: Cli, bad: Cells, reason: str) -> None:
    cli.ok("import", "people", cli.write("wang.csv", [WANG]))
    before = dump(cli)
    err = cli.refused("import", "people", cli.write("bad.csv", [QIAN, bad]))
    assert f"row 3: ({bad[1] or '?'})" in err
    assert reason in err
    assert dump(cli) == before


def test_every_bad_row_is_reported_in_one_run(cli: Cli) -> None:
    rows: list[Cells] = [
        QIAN,
        ("demo", "赵六", "boss", "13900000003", "", ""),
        ("demo", "孙八", "engineer", "13900000004", "", ""),
        ("demo", "", "reporter", "13900000005", "", ""),
        ("demo", "周九", "reporter", "", "abc", ""),
    ]
    err = cli.refused("import", "people", cli.write("bad.csv", rows))
    assert "(3 bad rows)" in err
    lines = [line.strip() for line in err.splitlines()[1:]]
    assert [line.split(":")[0] for line in lines] == ["row 3", "row 5", "row 6"]
    assert "role 'boss'" in lines[0] and "name is empty" in lines[1] and "telegram_id 'abc'" in lines[2]
    assert count(cli, "person") == 0


@pytest.mark.parametrize("missing", ["site", "role", "telegram_id"])
def test_a_file_without_a_required_column_is_refused(cli: Cli, missing: str) -> None:
    keep = [i for i, column in enumerate(PEOPLE) if column != missing]
    path = cli.write("cut.csv", [[WANG[i] for i in keep]], header=[PEOPLE[i] for i in keep])
    assert f"row 1: missing column(s): {missing}" in cli.refused("import", "people", path)
    assert count(cli, "person") == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(None, "people.csv: not a CSV text file", id="xlsx named .csv"),
        pytest.param(
            b'site,name\n"' + b"x" * 200_000, "people.csv: not a readable CSV file", id="open quote"
        ),
    ],
)
def test_a_csv_that_cannot_be_read_is_refused(cli: Cli, content: bytes | None, reason: str) -> None:
    path = cli.home / "people.csv"
    if content is None:
        save_xlsx(path, [PEOPLE, WANG])
    else:
        path.write_bytes(content)
    assert reason in cli.refused("import", "people", path)


@pytest.mark.parametrize("kind", ["people", "assets"])
def test_a_file_that_is_not_csv_or_xlsx_is_refused(cli: Cli, kind: str) -> None:
    path = cli.write("people.txt", [WANG])
    assert "people.txt: expected a .csv or .xlsx file" in cli.refused("import", kind, path)
    assert count(cli, "person") == count(cli, "asset") == 0


# people: one person on several rows, spreadsheet formats


def test_one_person_on_two_rows_gets_two_roles(cli: Cli) -> None:
    rows: list[Cells] = [
        ("demo", "马骏", "engineer", "138-0000-1013", "10013", ""),
        ("demo", "马骏", "supervisor", "13800001013", "", "majun"),
    ]
    out = cli.ok("import", "people", cli.write("two.csv", rows))
    assert "2 rows imported: 1 people created, 0 updated, 0 unchanged" in out
    assert cli.query("SELECT name, phone FROM person") == [("马骏", "13800001013")]
    assert grouped(cli, "membership", "role") == {"engineer": 1, "supervisor": 1}
    assert grouped(cli, "chat_identity", "channel") == {"telegram": 1, "wecom": 1}
    owners = "SELECT person_id FROM membership UNION SELECT person_id FROM chat_identity"
    assert len(cli.query(owners)) == 1


def test_two_telegram_ids_of_one_person_are_both_kept(cli: Cli) -> None:
    rows = [
        ("demo", "马骏", "engineer", "13800001013", "10013", ""),
        ("demo", "马骏", "supervisor", "13800001013", "10014", ""),
    ]
    assert "2 rows imported: 1 people created" in cli.ok("import", "people", cli.write("two.csv", rows))
    assert cli.query("SELECT person_id, external_id FROM chat_identity ORDER BY external_id") == [
        (1, "10013"),
        (1, "10014"),
    ]


def test_known_and_new_people_are_counted_apart(cli: Cli) -> None:
    cli.ok("import", "people", cli.write("wang.csv", [WANG]))
    wang_engineer = ("demo", "王晓丽", "engineer", "", "10001", "")
    out = cli.ok("import", "people", cli.write("more.csv", [wang_engineer, QIAN]))
    assert "2 rows imported: 1 people created, 1 updated, 0 unchanged" in out
    assert count(cli, "person") == 2
    assert grouped(cli, "membership", "role") == {"reporter": 2, "engineer": 1}


@pytest.mark.parametrize("doubles", [False, True], ids=["integers", "doubles"])
def test_xlsx_numbers_are_stored_as_plain_digits(cli: Cli, doubles: bool) -> None:
    rows: list[Cells] = [
        PEOPLE,
        ("demo", "王晓丽", "reporter", 13800001001.0, 10001.0, "wangxiaoli"),
        (None,) * len(PEOPLE),  # a blank row is skipped, not refused
        ("demo", "李俊", "engineer", 13800001002, 10002, None),
    ]
    path = save_xlsx(cli.home / "people.xlsx", rows, doubles=doubles)
    assert "2 rows imported: 2 people created" in cli.ok("import", "people", path)
    assert cli.query("SELECT phone FROM person ORDER BY id") == [("13800001001",), ("13800001002",)]
    telegram = "SELECT external_id FROM chat_identity WHERE channel = 'telegram' ORDER BY external_id"
    assert cli.query(telegram) == [("10001",), ("10002",)]


def test_a_bad_row_in_xlsx_is_named_by_its_sheet_row(cli: Cli) -> None:
    rows: list[Cells] = [PEOPLE, WANG, ("demo", "李俊", "reporter", "", 10.5, "")]
    path = save_xlsx(cli.home / "people.xlsx", rows)
    assert "row 3: (李俊) telegram_id '10.5' is not valid" in cli.refused("import", "people", path)
    assert count(cli, "person") == 0


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_csv_from_chinese_excel_keeps_the_names(cli: Cli, encoding: str) -> None:
    path = cli.write("people.csv", [WANG, QIAN], encoding=encoding)
    assert "2 rows imported: 2 people created" in cli.ok("import", "people", path)
    assert cli.query("SELECT name FROM person ORDER BY id") == [("王晓丽",), ("钱七",)]


# assets


def test_demo_assets_import_into_every_subsystem_and_again_updates(cli: Cli) -> None:
    assets = demo_file("assets.csv")
    assert "86 rows imported: 86 assets created, 0 updated, 0 unchanged" in cli.ok("import", "assets", assets)
    assert count(cli, "asset") == 86
    assert cli.query("SELECT count(DISTINCT subsystem_id) FROM asset") == [(12,)]
    machine_room = "SELECT s.name FROM asset a JOIN subsystem s ON s.id = a.subsystem_id WHERE a.code = ?"
    assert cli.query(machine_room, "MR-CORE") == [("机房",)]
    before = dump(cli, ["asset"])
    assert "86 rows imported: 0 assets created, 0 updated, 86 unchanged" in cli.ok("import", "assets", assets)
    assert dump(cli, ["asset"]) == before


def test_reimporting_an_asset_updates_it(cli: Cli) -> None:
    cli.ok("import", "assets", cli.write("a.csv", [SWITCH], header=ASSETS))
    moved = ("demo", "机房", "SW-CORE-01", "核心交换机(新)", "机房B02", "华为 S7706", "SN002")
    out = cli.ok("import", "assets", cli.write("b.csv", [moved], header=ASSETS))
    assert "1 rows imported: 0 assets created, 1 updated, 0 unchanged" in out
    stored = "SELECT s.name, a.name, location, serial FROM asset a JOIN subsystem s ON s.id = subsystem_id"
    assert cli.query(stored) == [("机房", "核心交换机(新)", "机房B02", "SN002")]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        pytest.param(
            ("demo", "不存在", "UPS-01", "UPS"),
            "row 3: (UPS-01) subsystem '不存在' is not one of site demo's: 信息管理,",
            id="unknown subsystem",
        ),
        pytest.param(
            ("nowhere", "机房", "UPS-01", "UPS"),
            "row 3: (UPS-01) site 'nowhere' does not exist",
            id="unknown site",
        ),
        pytest.param(
            ("demo", "机房", "SW-CORE-01", "交换机"),
            "row 3: (SW-CORE-01) code SW-CORE-01 already appears in row 2",
            id="duplicate code",
        ),
        pytest.param(
            ("demo", "机房", "UPS 01", "UPS"),
            "row 3: (UPS 01) code 'UPS 01' is not valid",
            id="code with space",
        ),
        pytest.param(
            ("demo", "机房", "UPS-" + "0" * 17, "UPS"), "code is longer than 20 characters", id="long code"
        ),
        pytest.param(("demo", "机房", "", "UPS"), "row 3: (?) code is empty", id="no code"),
        pytest.param(("demo", "机房", "UPS-01", ""), "row 3: (UPS-01) name is empty", id="no name"),
    ],
)
def test_a_bad_asset_row_refuses_the_file(cli: Cli, bad: Cells, reason: str) -> None:
    cli.ok("import", "assets", cli.write("a.csv", [SWITCH], header=ASSETS))
    before = dump(cli, ["asset"])
    renamed = (*SWITCH[:3], "改名的交换机", *SWITCH[4:])
    err = cli.refused("import", "assets", cli.write("bad.csv", [renamed, bad], header=ASSETS))
    assert "(1 bad row)" in err and reason in err
    assert dump(cli, ["asset"]) == before


def test_a_bracket_in_a_bad_row_is_shown_as_typed(cli: Cli) -> None:
    err = cli.refused("import", "people", cli.write("bad.csv", [("demo", "[/b]赵六", "boss", "", "", "x")]))
    assert "([/b]赵六) role 'boss'" in err
