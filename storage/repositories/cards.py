"""Ticket cards: what each chat account sees of a ticket, read and written in bulk (Core, no ORM
objects), so telling fifteen accounts costs one statement, not fifteen."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.enums import Channel
from storage.models import TicketCard

TABLE = TicketCard.__table__  # type: ignore[attr-defined]
Rows = list[list[dict[str, str]]]


@dataclass
class Card:
    """One card as stored."""

    id: int
    ticket_id: int
    person_id: int
    channel: Channel
    chat_id: str
    text: str
    buttons: Rows
    live: bool
    handle: str | None
    token: str | None
    token_at: datetime | None


def _card(row: Any) -> Card:
    values = dict(row._mapping)
    values.pop("created_at", None)
    values.pop("updated_at", None)
    values["channel"] = Channel(values["channel"])
    return Card(**values)


async def live_cards(session: AsyncSession, ticket_id: int) -> list[Card]:
    """The live cards of a ticket."""
    query = select(TABLE).where(TABLE.c.ticket_id == ticket_id, TABLE.c.live.is_(True)).order_by(TABLE.c.id)
    return [_card(row) for row in (await (await session.connection()).execute(query)).all()]


async def cards(session: AsyncSession, ids: Iterable[int]) -> dict[int, Card]:
    """Cards by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(TABLE).where(TABLE.c.id.in_(wanted))
    return {row.id: _card(row) for row in (await (await session.connection()).execute(query)).all()}


async def sharing(session: AsyncSession, channel: Channel, chat_id: str, handle: str) -> list[Card]:
    """The cards one sent message carries (a digest carries several), in the order sent."""
    query = (
        select(TABLE)
        .where(TABLE.c.channel == channel, TABLE.c.chat_id == chat_id, TABLE.c.handle == handle)
        .order_by(TABLE.c.id)
    )
    return [_card(row) for row in (await (await session.connection()).execute(query)).all()]


async def add_cards(session: AsyncSession, new: Sequence[dict[str, Any]]) -> list[int]:
    """Insert cards (one statement); their ids, in the order given."""
    if not new:
        return []
    statement = insert(TABLE).returning(TABLE.c.id, TABLE.c.channel, TABLE.c.chat_id)
    rows = (await (await session.connection()).execute(statement, list(new))).all()
    by_account = {(Channel(row.channel), row.chat_id): row.id for row in rows}
    return [by_account[(Channel(c["channel"]), c["chat_id"])] for c in new]


CHANGED = ("text", "buttons", "live", "token", "token_at", "updated_at")


async def change_cards(session: AsyncSession, changes: Sequence[dict[str, Any]]) -> None:
    """Update cards (one statement): each change names ``card`` (the id) and the new values
    of every field in CHANGED."""
    if not changes:
        return
    statement = (
        update(TicketCard)
        .where(col(TicketCard.id) == bindparam("card"))
        .values({name: bindparam(f"new_{name}") for name in CHANGED})
        .execution_options(synchronize_session=False)
    )
    params = [{"card": c["card"], **{f"new_{name}": c[name] for name in CHANGED}} for c in changes]
    await (await session.connection()).execute(statement, params)


async def set_handle(
    session: AsyncSession,
    ids: Sequence[int],
    handle: str | None,
    token: str | None,
    token_at: datetime | None,
) -> None:
    """The sent message's handle (and one-time token) for the cards it carried."""
    if ids:
        statement = (
            update(TicketCard)
            .where(col(TicketCard.id).in_(list(ids)))
            .values(handle=handle, token=token, token_at=token_at)
            .execution_options(synchronize_session=False)
        )
        await (await session.connection()).execute(statement)
