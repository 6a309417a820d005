"""Duty shifts of a site (the roster); like every repository, it never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Site
from storage.roster_models import DutyShift


async def shift_at(session: AsyncSession, site_id: int, at: datetime) -> DutyShift | None:
    """The shift covering ``at`` (starts_at <= at < ends_at); the latest start if several do."""
    query = (
        select(DutyShift)
        .where(DutyShift.site_id == site_id, DutyShift.starts_at <= at, DutyShift.ends_at > at)
        .order_by(col(DutyShift.starts_at).desc())
    )
    return (await session.exec(query)).first()


async def shifts_between(
    session: AsyncSession, site_id: int, start: datetime, end: datetime
) -> Sequence[DutyShift]:
    """The shifts of a site overlapping [start, end), by start time."""
    query = (
        select(DutyShift)
        .where(DutyShift.site_id == site_id, DutyShift.starts_at < end, DutyShift.ends_at > start)
        .order_by(col(DutyShift.starts_at))
    )
    return (await session.exec(query)).all()


async def lock_site(session: AsyncSession, site_id: int) -> None:
    """Hold the site's row until the transaction ends, so two roster writers take turns.

    PostgreSQL takes a row lock (SELECT ... FOR UPDATE); SQLite has one writer anyway.
    """
    await session.exec(select(Site.id).where(Site.id == site_id).with_for_update())
