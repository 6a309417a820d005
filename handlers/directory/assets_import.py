"""Importing a site's asset register: columns site, subsystem, code, name, location, model, serial.

An asset is recognised by (site, code): importing again updates it. Every row is checked
before anything is written: one bad row refuses the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.directory.rows import (
    ImportRejected,
    ImportResult,
    Progress,
    RowError,
    Tally,
    check_pattern,
    check_site,
    check_text,
)
from handlers.directory.tables import Row
from storage.models import Asset, Site, Subsystem
from storage.repositories.assets import asset_by_code
from storage.repositories.sites import site_by_slug, subsystems

ASSET_COLUMNS = ("site", "subsystem", "code", "name", "location", "model", "serial")


@dataclass(frozen=True)
class _AssetRow:
    site_id: int
    subsystem_id: int
    code: str
    name: str
    location: str
    model: str
    serial: str


async def import_assets(
    session: AsyncSession, rows: list[Row], progress: Progress | None = None
) -> ImportResult:
    """Check every row, then create or update the assets."""
    catalogue: dict[str, tuple[Site, dict[str, Subsystem]] | None] = {}
    seen: dict[tuple[int, str], int] = {}
    accepted: list[_AssetRow] = []
    errors: list[RowError] = []
    for row in rows:
        reasons: list[str] = []
        found = await check_site(reasons, row.cells, catalogue, lambda slug: _site_catalogue(session, slug))
        subsystem_name = check_text(reasons, row.cells, "subsystem", 60, required=True)
        code = check_text(reasons, row.cells, "code", 20, required=True)
        check_pattern(reasons, row.cells, "code", r"[A-Za-z0-9-]{1,20}", "letters, digits and dashes")
        name = check_text(reasons, row.cells, "name", 120, required=True)
        location = check_text(reasons, row.cells, "location", 120, required=False)
        model = check_text(reasons, row.cells, "model", 120, required=False)
        serial = check_text(reasons, row.cells, "serial", 60, required=False)
        subsystem = None
        if found is not None and subsystem_name:
            site, by_name = found
            subsystem = by_name.get(subsystem_name)
            if subsystem is None:
                reasons.append(
                    f"subsystem {subsystem_name!r} is not one of site {site.slug}'s: {', '.join(by_name)}"
                )
            assert site.id is not None
            first = seen.setdefault((site.id, code), row.number)
            if code and first != row.number:
                reasons.append(f"code {code} already appears in row {first}")
        if reasons or found is None or subsystem is None:
            errors.append(RowError(row.number, f"({code or '?'}) " + "; ".join(reasons)))
        else:
            assert found[0].id is not None and subsystem.id is not None
            accepted.append(_AssetRow(found[0].id, subsystem.id, code, name, location, model, serial))
        if progress:
            progress()
    if errors:
        raise ImportRejected(errors)
    return await _write(session, accepted, len(rows))


async def _site_catalogue(session: AsyncSession, slug: str) -> tuple[Site, dict[str, Subsystem]] | None:
    site = await site_by_slug(session, slug)
    if site is None or site.id is None:
        return None
    return site, {s.name: s for s in await subsystems(session, site.id, active_only=False)}


async def _write(session: AsyncSession, accepted: list[_AssetRow], rows: int) -> ImportResult:
    tally = Tally(rows)
    for item in accepted:
        asset = await asset_by_code(session, item.site_id, item.code)
        is_new = asset is None
        if asset is None:
            asset = Asset(
                site_id=item.site_id, subsystem_id=item.subsystem_id, code=item.code, name=item.name
            )
        wanted = (item.subsystem_id, item.name, item.location, item.model, item.serial)
        changed = (asset.subsystem_id, asset.name, asset.location, asset.model, asset.serial) != wanted
        asset.subsystem_id, asset.name, asset.location, asset.model, asset.serial = wanted
        session.add(asset)
        tally.count(is_new, changed)
    await session.flush()
    return tally.result()
