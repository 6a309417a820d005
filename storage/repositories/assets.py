"""A site's asset register."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Asset


async def asset_by_code(session: AsyncSession, site_id: int, code: str) -> Asset | None:
    """The asset with ``code`` at a site."""
    return (await session.exec(select(Asset).where(Asset.site_id == site_id, Asset.code == code))).first()


async def assets_of(session: AsyncSession, site_id: int, subsystem_id: int | None = None) -> Sequence[Asset]:
    """A site's assets, optionally of one subsystem, by code."""
    query = select(Asset).where(Asset.site_id == site_id)
    if subsystem_id is not None:
        query = query.where(Asset.subsystem_id == subsystem_id)
    return (await session.exec(query.order_by(col(Asset.code)))).all()
