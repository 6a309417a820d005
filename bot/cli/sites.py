"""``dutydesk site``: add and list sites, set a site's policy override."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from bot.cli.common import CliError, console, fail, run
from bot.runtime import Runtime
from handlers.sla.policy import PolicyError
from storage.engine import transaction
from storage.models import DEFAULT_TIMEZONE
from storage.repositories.sites import create_site, list_sites, site_by_slug, subsystems

app = typer.Typer(
    help="Client sites (each with its own people, assets, tickets and policy).", no_args_is_help=True
)
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the site's display name, e.g. 示例法院")],
    slug: Annotated[str, typer.Option("--slug", help="short id: lowercase letters, digits, dashes")],
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone")] = DEFAULT_TIMEZONE,
) -> None:
    """Add a site with the twelve default subsystems."""
    if not SLUG.fullmatch(slug):
        fail(f"slug {slug!r}: use 1-40 lowercase letters, digits and dashes")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"time zone {tz!r} is unknown (e.g. Asia/Shanghai)")
    if not name.strip():
        fail("the site name is empty")

    async def _add(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            if await site_by_slug(session, slug) is not None:
                raise CliError(f"a site with slug {slug!r} already exists")
            site = await create_site(session, name.strip(), slug, runtime.clock.now(), tz)
            assert site.id is not None
            count = len(await subsystems(session, site.id))
        console.print(f"site {slug} added: {site.name} ({tz}), {count} subsystems")

    run(_add)


@app.command("list")
def list_() -> None:
    """List the sites."""

    async def _list(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            rows = await list_sites(session)
        table = Table("slug", "name", "time zone", "policy")
        for site in rows:
            table.add_row(site.slug, site.name, site.timezone, "own" if site.policy_toml else "default")
        console.print(table)

    run(_list)


@app.command("policy")
def policy(
    slug: Annotated[str, typer.Argument(help="the site")],
    file: Annotated[Path | None, typer.Argument(help="TOML overriding parts of the policy")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="go back to the default policy")] = False,
) -> None:
    """Give a site its own policy (parts of the policy file), or --clear it."""
    if (file is None) == (not clear):
        fail("give a policy FILE or --clear")
    text = None if clear or file is None else file.read_text(encoding="utf-8")

    async def _set(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            site = await site_by_slug(session, slug)
            if site is None:
                raise CliError(f"no site {slug!r}")
            if text is not None:
                try:
                    runtime.policies.for_site(slug, text)
                except PolicyError as exc:
                    raise CliError(f"policy refused: {file}: {exc.key}: {exc.reason}", 2) from exc
            site.policy_toml = text
            session.add(site)
        console.print(f"site {slug}: {'own policy from ' + str(file) if text else 'default policy'}")

    run(_set)
