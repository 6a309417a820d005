"""Fixtures of the scheduler tests: every person of the world reachable on the web chat, and
what each of them has been sent, read from the outbox table (the only way out)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import col, select

from storage.engine import transaction
from storage.enums import Channel
from storage.models import OutboxMessage
from storage.repositories.people import link_identity
from tests.conftest import Database, Desk


@dataclass
class Inboxes:
    """What each person was sent, by person id (web chat address "p<id>"), from outbox rows."""

    db: Database
    seen: int = 0

    async def take(self) -> dict[int, list[str]]:
        """The texts of the outbox rows written since the last take, by recipient."""
        async with transaction(self.db.factory) as session:
            query = (
                select(OutboxMessage).where(col(OutboxMessage.id) > self.seen).order_by(col(OutboxMessage.id))
            )
            rows = (await session.exec(query)).all()
        got: dict[int, list[str]] = {}
        for row in rows:
            self.seen = max(self.seen, row.id or 0)
            got.setdefault(int(row.chat_id[1:]), []).append(row.text)
        return got


@pytest.fixture
async def inboxes(desk: Desk) -> Inboxes:
    w = desk.world
    async with transaction(desk.db.factory) as session:
        for person in (w.reporter, w.engineer, w.backup_engineer, w.supervisor, w.manager, w.other_reporter):
            await link_identity(session, person, Channel.WEBCHAT, f"p{person}")
    return Inboxes(desk.db)
