"""``dutydesk invite`` and ``dutydesk qr``: codes to join a site, links a device's QR code carries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import qrcode
import typer
from qrcode.image.pure import PyPNGImage

from bot.cli.common import CliError, console, fail, run, settings
from bot.runtime import Runtime
from bot.settings import deep_links
from storage.engine import transaction
from storage.enums import Role
from storage.repositories.assets import asset_by_code
from storage.repositories.invites import create_invite
from storage.repositories.sites import list_sites, site_by_slug

JOINABLE = [Role.REPORTER.value, Role.ENGINEER.value, Role.SUPERVISOR.value, Role.MANAGER.value]


def invite(
    site: Annotated[str, typer.Option("--site", help="the site to join")],
    role: Annotated[str, typer.Option("--role", help="reporter, engineer, supervisor or manager")],
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="valid for this many days")] = 14,
) -> None:
    """Print a single-use invite code and the links that use it."""
    if role not in JOINABLE:
        fail(f"role {role!r}: use one of {', '.join(JOINABLE)}")

    async def _invite(runtime: Runtime) -> str:
        async with transaction(runtime.sessions) as session:
            found = await site_by_slug(session, site)
            if found is None or found.id is None:
                raise CliError(f"no site {site!r}")
            created = await create_invite(
                session, found.id, Role(role), runtime.clock.now(), timedelta(days=days)
            )
            return created.code

    code = run(_invite)
    console.print(f"invite code: {code}  ({role} at {site}, valid {days} days, single use)")
    console.print(f"in any chat with the bot, send: /join {code}")
    for channel, link in deep_links(settings(), f"join_{code}"):
        console.print(f"{channel}: {link}", markup=False)


def qr(
    asset_code: Annotated[str, typer.Argument(help="the asset's code, e.g. SRV-CASE-01")],
    out: Annotated[Path | None, typer.Option("--out", help="PNG file (default: ASSET_CODE.png)")] = None,
    site: Annotated[str | None, typer.Option("--site", help="the asset's site when several have it")] = None,
) -> None:
    """Print the link a device's QR code carries (it starts a report for that device) and write the PNG."""

    async def _check(runtime: Runtime) -> None:
        async with transaction(runtime.sessions) as session:
            sites = [s for s in await list_sites(session) if site is None or s.slug == site]
            for candidate in sites:
                if await asset_by_code(session, candidate.id or 0, asset_code) is not None:
                    return
        raise CliError(f"no asset {asset_code!r}" + (f" at site {site!r}" if site else ""))

    run(_check)
    links = deep_links(settings(), f"asset_{asset_code}")
    path = out or Path(f"{asset_code}.png")
    qrcode.make(links[0][1], image_factory=PyPNGImage).save(str(path))
    for channel, link in links:
        console.print(f"{channel}: {link}", markup=False)
    console.print(f"QR code ({links[0][0]}): {path}", markup=False)
