"""What every command shares: settings and runtime at start, errors as clear exits, local time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NoReturn, TypeVar
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console

from bot.runtime import Runtime, open_runtime
from bot.settings import Settings, load_settings
from handlers.clock import Clock, ManualClock
from handlers.sla.policy import PolicyError
from handlers.tickets.machine import TicketRuleError
from storage.engine import safe_url
from storage.migrate import current_revision, head_revision
from storage.models import DEFAULT_TIMEZONE

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class CliState:
    """Options given before the command (``dutydesk --config FILE ...``)."""

    config: Path | None = None
    #: ``--now``: the time every command takes as the present (None: the real clock).
    now: datetime | None = None

    def clock(self) -> Clock | None:
        """The clock the commands read: a fixed one with ``--now``, else the runtime's default."""
        return None if self.now is None else ManualClock(self.now)


state = CliState()


class CliError(Exception):
    """A refusal to show the user as it is, with the exit code to leave with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    errors.print(message, style="red", markup=False)
    raise typer.Exit(code)


def settings() -> Settings:
    """The settings, or a clear exit naming what is wrong with them."""
    try:
        return load_settings(state.config)
    except (ValidationError, FileNotFoundError) as exc:
        fail(f"settings refused: {exc}", 2)


def run(command: Callable[[Runtime], Awaitable[T]], *, needs_schema: bool = True) -> T:
    """Build the runtime, check the schema, run ``command`` and turn refusals into exits."""

    async def _main() -> T:
        async with open_runtime(settings(), state.clock()) as runtime:
            if needs_schema:
                await _require_schema(runtime)
            return await command(runtime)

    try:
        return asyncio.run(_main())
    except PolicyError as exc:
        fail(f"policy refused: {exc}", 2)
    except TicketRuleError as exc:
        fail(str(exc))
    except CliError as exc:
        fail(str(exc), exc.code)


async def _require_schema(runtime: Runtime) -> None:
    revision = await current_revision(runtime.engine)
    if revision != head_revision():
        where = safe_url(runtime.settings.database_url)
        state_text = "is not initialised" if revision is None else f"is at revision {revision}"
        raise CliError(f"the database {where} {state_text}; run: dutydesk init")


def parse_now(value: str) -> datetime:
    """``--now``: ISO 8601 with an offset, or "YYYY-MM-DD HH:MM" in the default zone (Asia/Shanghai)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f'--now {value!r}: expected "YYYY-MM-DD HH:MM" or ISO 8601 with an offset', 2)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))
    return moment


def local(when: datetime | None, timezone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC time shown in a site's time zone ("—" for none)."""
    if when is None:
        return "—"
    return when.astimezone(ZoneInfo(timezone)).strftime(fmt)
