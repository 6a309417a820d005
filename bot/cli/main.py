"""``dutydesk``: set up a database, manage sites, import people and assets, inspect tickets
and the service policy, and run the service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from bot.cli import imports, sites, sla, tickets
from bot.cli.common import console, run, state
from bot.runtime import Runtime
from bot.web import serve
from storage.engine import safe_url
from storage.migrate import current_revision, upgrade

app = typer.Typer(
    name="dutydesk",
    help="Chat-bot helpdesk for IT operations: fault reports, SLA deadlines and escalation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sites.app, name="site")
app.add_typer(imports.app, name="import")
app.add_typer(tickets.app, name="tickets")
app.add_typer(sla.app, name="sla")


@app.callback()
def options(
    config: Annotated[
        Path | None, typer.Option("--config", help="settings file instead of ./dutydesk.toml")
    ] = None,
) -> None:
    """Settings come from DUTYDESK_* variables and ./dutydesk.toml (or --config)."""
    state.config = config


@app.command()
def init() -> None:
    """Create or upgrade the database schema (Alembic upgrade to head)."""

    async def _init(runtime: Runtime) -> None:
        await upgrade(runtime.engine)
        revision = await current_revision(runtime.engine)
        console.print(f"database ready: {safe_url(runtime.settings.database_url)} (revision {revision})")

    run(_init, needs_schema=False)


@app.command("run")
def run_service() -> None:
    """Start the service (HTTP server with GET /healthz) until Ctrl-C or SIGTERM."""

    async def _serve(runtime: Runtime) -> None:
        logging.basicConfig(
            level=runtime.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        await serve(runtime)

    run(_serve)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
