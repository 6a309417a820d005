"""CLI fixtures: a fresh working directory with its own SQLite file, driven in-process."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli.main import app


class Cli:
    """Runs ``dutydesk`` commands in-process against one database file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db_path = workdir / "dutydesk.db"
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        """Run one command and return its result (exit code, stdout, stderr)."""
        return self.runner.invoke(app, list(args))

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; its standard output."""
        result = self(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Rows from the database file, read as any SQLite client would."""
        with sqlite3.connect(self.db_path) as connection:
            return connection.execute(sql).fetchall()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """An empty working directory whose database is ./dutydesk.db (not yet initialised)."""
    monkeypatch.chdir(tmp_path)
    for name in ("DUTYDESK_POLICY", "DUTYDESK_HTTP_PORT", "DUTYDESK_HTTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUTYDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'dutydesk.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    yield Cli(tmp_path)


@pytest.fixture
def demo(cli: Cli) -> Cli:
    """An initialised database with the site demo (示例法院)."""
    cli.ok("init")
    cli.ok("site", "add", "示例法院", "--slug", "demo")
    return cli
