"""Once-only runs of periodic jobs across processes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CronRun


async def claim_run(session: AsyncSession, key: str, now: datetime) -> bool:
    """True for the first caller with ``key`` (the run is theirs), False for every later one."""
    connection = await session.connection()
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(CronRun).values(key=key, ran_at=now).on_conflict_do_nothing(index_elements=["key"])
    )
    return bool((await connection.execute(statement)).rowcount)
