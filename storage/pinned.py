"""Rows a transaction keeps at hand: SQLAlchemy's identity map holds loaded objects weakly, so a
row read, used and dropped (a Site for its policy) is read again by the next ``get``. Pinned
rows stay in the session until it closes."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")
_KEY = "dutydesk.pinned"


def pin(session: AsyncSession, *rows: object) -> None:
    """Keep ``rows`` loaded until the session ends."""
    session.info.setdefault(_KEY, []).extend(row for row in rows if row is not None)


async def pinned_get(session: AsyncSession, model: type[T], key: Any) -> T | None:
    """``session.get`` that keeps what it found for the rest of the transaction."""
    found = await session.get(model, key)
    if found is not None:
        pin(session, found)
    return found
