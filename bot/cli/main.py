"""``dutydesk``: set up a database, manage sites, import people and assets, inspect tickets
and the service policy, and run the service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from bot.cli import imports, people, roster, sites, sla, tickets, wecom
from bot.cli.common import console, parse_now, run, state
from bot.demo import seed_demo
from bot.runtime import Runtime
from bot.service import serve
from storage.engine import safe_url, transaction
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
app.add_typer(roster.app, name="roster")
app.add_typer(wecom.app, name="wecom")
app.command("invite")(people.invite)
app.command("qr")(people.qr)


@app.callback()
def options(
    config: Annotated[
        Path | None, typer.Option("--config", help="settings file instead of ./dutydesk.toml")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help='take this time as the present ("YYYY-MM-DD HH:MM" in Asia/Shanghai, or ISO 8601 with an '
            "offset): what the deadlines look like then",
        ),
    ] = None,
) -> None:
    """Settings come from DUTYDESK_* variables and ./dutydesk.toml (or --config)."""
    state.config = config
    state.now = None if now is None else parse_now(now)


@app.command()
def init() -> None:
    """Create or upgrade the database schema (Alembic upgrade to head)."""

    async def _init(runtime: Runtime) -> None:
        await upgrade(runtime.engine)
        revision = await current_revision(runtime.engine)
        console.print(f"database ready: {safe_url(runtime.settings.database_url)} (revision {revision})")

    run(_init, needs_schema=False)


@app.command()
def demo() -> None:
    """Seed the demo site (示例法院, assets, six people with web chat accounts) into an empty database."""

    async def _demo(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            seeded = await seed_demo(session, runtime.clock)
        console.print("demo site seeded" if seeded else "the database already has a site: nothing seeded")

    run(_demo)


@app.command("run")
def run_service() -> None:
    """Start the service (HTTP server with GET /healthz) until Ctrl-C or SIGTERM."""

    async def _serve(runtime: Runtime) -> None:
        logging.basicConfig(
            level=runtime.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        # APScheduler logs every run of every job at INFO (the tick runs each second).
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
        if not runtime.settings.telegram_token:
            async with transaction(runtime.sessions) as session:
                if await seed_demo(session, runtime.clock):
                    console.print("no site yet and no Telegram token: seeded the demo site 示例法院 (demo)")
        await serve(runtime)

    run(_serve)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
