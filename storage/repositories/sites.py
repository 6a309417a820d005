"""Sites and their subsystems."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DEFAULT_SUBSYSTEMS, DEFAULT_TIMEZONE, Site, Subsystem


async def create_site(
    session: AsyncSession, name: str, slug: str, now: datetime, timezone: str = DEFAULT_TIMEZONE
) -> Site:
    """Add a site with the twelve default subsystems of the seed."""
    site = Site(name=name, slug=slug, timezone=timezone, created_at=now)
    session.add(site)
    await session.flush()
    assert site.id is not None
    for position, subsystem in enumerate(DEFAULT_SUBSYSTEMS):
        session.add(Subsystem(site_id=site.id, name=subsystem, position=position))
    await session.flush()
    return site


async def site_by_slug(session: AsyncSession, slug: str) -> Site | None:
    """The site called ``slug``, if any."""
    return (await session.exec(select(Site).where(Site.slug == slug))).first()


async def list_sites(session: AsyncSession) -> Sequence[Site]:
    """Every site, by slug."""
    return (await session.exec(select(Site).order_by(col(Site.slug)))).all()


async def subsystems(session: AsyncSession, site_id: int, *, active_only: bool = True) -> Sequence[Subsystem]:
    """A site's subsystems in catalogue order."""
    query = select(Subsystem).where(Subsystem.site_id == site_id)
    if active_only:
        query = query.where(col(Subsystem.active).is_(True))
    return (await session.exec(query.order_by(col(Subsystem.position), col(Subsystem.id)))).all()


async def subsystem_by_name(session: AsyncSession, site_id: int, name: str) -> Subsystem | None:
    """A site's subsystem called ``name``."""
    query = select(Subsystem).where(Subsystem.site_id == site_id, Subsystem.name == name)
    return (await session.exec(query)).first()
