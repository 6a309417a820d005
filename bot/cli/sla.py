"""``dutydesk sla show``: the policy a site follows and, with --at, the due times it gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from bot.cli.common import CliError, console, fail, local, run
from bot.runtime import Runtime
from handlers.sla.policy import LEVELS, format_duration
from storage.engine import transaction
from storage.enums import Clock
from storage.models import DEFAULT_TIMEZONE
from storage.repositories.sites import site_by_slug

app = typer.Typer(help="The service policy (promised times per fault level).", no_args_is_help=True)


@app.command("show")
def show(
    site: Annotated[str | None, typer.Option("--site", help="a site (its own policy and time zone)")] = None,
    level: Annotated[int | None, typer.Option("--level", min=1, max=3, help="only this level")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help='report time "YYYY-MM-DD HH:MM" in the site\'s local time')
    ] = None,
) -> None:
    """Print the policy; with --at, when each clock of a ticket reported then falls due."""
    reported = None
    if at is not None:
        try:
            # Naive on purpose: it is the site's local time, attached once the site is known.
            reported = datetime.strptime(at, "%Y-%m-%d %H:%M")  # noqa: DTZ007
        except ValueError:
            fail(f'--at {at!r}: expected "YYYY-MM-DD HH:MM"')

    async def _show(runtime: Runtime) -> None:
        policy, tz, title = runtime.policies.base, DEFAULT_TIMEZONE, "default policy"
        if site is not None:
            async with transaction(runtime.sessions) as session:
                found = await site_by_slug(session, site)
            if found is None:
                raise CliError(f"no site {site!r}")
            policy = runtime.policies.for_site(found.slug, found.policy_toml)
            tz, title = found.timezone, f"site {found.slug} ({found.name})"
        start = None if reported is None else reported.replace(tzinfo=ZoneInfo(tz))
        columns = ["level", "clock", "within", "counted from"] + ([f"due ({tz})"] if start else [])
        table = Table(*columns, title=f"Service policy · {title}")
        for number in [level] if level else LEVELS:
            times = policy.level(number)
            for clock, span in (
                (Clock.RESPONSE, times.response),
                (Clock.RESTORE, times.restore),
                (Clock.RESOLVE, times.resolve),
            ):
                if span is None:
                    continue
                from_arrival = clock is Clock.RESOLVE and times.resolve_from == "arrival"
                row = [
                    str(number),
                    clock.value,
                    format_duration(span),
                    "arrival" if from_arrival else "report",
                ]
                if start is not None:
                    row.append("after arrival" if from_arrival else local(start + span, tz))
                table.add_row(*row)
        console.print(table)
        window = policy.classification_window
        console.print(
            f"classification within {format_duration(window)} (provisional level {policy.default_level}); "
            f"reminders at {', '.join(f'{int(f * 100)}%' for f in policy.reminders)} of each clock"
        )

    run(_show)
