"""CLI fixtures: a fresh working directory with its own SQLite file, driven in-process."""

from __future__ import annotations

import csv
import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli.main import app
from handlers.directory.people_import import PEOPLE_COLUMNS

ANSI = re.compile(r"\x1b\[[0-9;]*m")
Cells = Sequence[str | float | None]


class Cli:
    """Runs ``dutydesk`` commands in-process in one directory and reads its database."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.database = home / "dutydesk.db"
        self.runner = CliRunner()

    def __call__(self, *args: str | Path) -> Result:
        """Run one command; an unexpected exception (a traceback for the user) fails the test."""
        result = self.runner.invoke(app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def run(self, *args: str | Path) -> tuple[int, str, str]:
        """Exit code, stdout and stderr (without colour codes) of one command."""
        result = self(*args)
        return result.exit_code, ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)

    def ok(self, *args: str | Path) -> str:
        """The output of a command that must succeed."""
        code, out, err = self.run(*args)
        assert code == 0, err
        return out

    def refused(self, *args: str | Path) -> str:
        """The error output of an import that must be refused (nothing on stdout)."""
        code, out, err = self.run(*args)
        assert code == 1, out
        assert "refused, nothing was imported" in err
        assert "imported:" not in out
        return err

    def write(
        self,
        name: str,
        rows: Sequence[Cells],
        header: Sequence[str] = PEOPLE_COLUMNS,
        encoding: str = "utf-8",
    ) -> Path:
        """A CSV file in the working directory with ``header`` (people's by default) and ``rows``."""
        path = self.home / name
        with path.open("w", encoding=encoding, newline="") as file:
            csv.writer(file, lineterminator="\n").writerows([header, *rows])
        return path

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows from the database file, read as any SQLite client would."""
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """An empty working directory whose database is ./dutydesk.db (not yet initialised)."""
    for key in list(os.environ):
        if key.startswith("DUTYDESK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DUTYDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'dutydesk.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(tmp_path)


@pytest.fixture
def demo(cli: Cli) -> Cli:
    """An initialised database with the site demo (示例法院)."""
    cli.ok("init")
    assert "12 subsystems" in cli.ok("site", "add", "示例法院", "--slug", "demo")
    return cli
