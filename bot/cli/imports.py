"""``dutydesk import``: people and assets from CSV or XLSX, all or nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress as Bar
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli.common import console, errors, run
from bot.runtime import Runtime
from handlers.directory.assets_import import ASSET_COLUMNS, import_assets
from handlers.directory.people_import import PEOPLE_COLUMNS, import_people
from handlers.directory.rows import ImportRejected, ImportResult, Progress
from handlers.directory.tables import Row, read_rows
from storage.engine import transaction

app = typer.Typer(help="Import people or assets from a CSV or XLSX file.", no_args_is_help=True)

Importer = Callable[[AsyncSession, list[Row], Runtime, Progress], Awaitable[ImportResult]]


def _import(path: Path, columns: tuple[str, ...], what: str, importer: Importer) -> None:
    async def _run(runtime: Runtime) -> ImportResult | ImportRejected:
        try:
            rows = read_rows(path, columns)
            with Bar(console=console, transient=True, disable=not console.is_terminal) as bar:
                task = bar.add_task(f"checking {len(rows)} {what} rows", total=len(rows))
                async with transaction(runtime.sessions) as session:
                    return await importer(session, rows, runtime, lambda: bar.advance(task))
        except ImportRejected as rejected:
            return rejected

    outcome = run(_run)
    if isinstance(outcome, ImportRejected):
        bad = len(outcome.errors)
        refusal = f"{path}: refused, nothing was imported ({bad} bad row{'s' if bad != 1 else ''})"
        errors.print(refusal, style="red", markup=False)
        for error in outcome.errors:
            errors.print(f"  {error}", markup=False)
        raise typer.Exit(1)
    console.print(
        f"{path}: {outcome.rows} rows imported: {outcome.created} {what} created, "
        f"{outcome.updated} updated, {outcome.unchanged} unchanged",
        markup=False,
    )


@app.command("people")
def people(file: Annotated[Path, typer.Argument(help=f"columns: {', '.join(PEOPLE_COLUMNS)}")]) -> None:
    """Import people with their roles and chat ids (site, name, role, phone, telegram_id, wecom_userid)."""
    _import(file, PEOPLE_COLUMNS, "people", lambda s, rows, rt, p: import_people(s, rows, rt.clock.now(), p))


@app.command("assets")
def assets(file: Annotated[Path, typer.Argument(help=f"columns: {', '.join(ASSET_COLUMNS)}")]) -> None:
    """Import a site's assets (site, subsystem, code, name, location, model, serial)."""
    _import(file, ASSET_COLUMNS, "assets", lambda s, rows, rt, p: import_assets(s, rows, p))
