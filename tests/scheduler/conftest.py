"""Fixtures of the scheduler tests: every person of the world reachable on the web chat."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from handlers.messages import Reply
from storage.engine import transaction
from storage.enums import Channel
from storage.repositories.people import link_identity
from tests.conftest import Desk


@dataclass
class Inboxes:
    """What each person received, by person id (web chat address "p<id>")."""

    received: dict[int, list[str]] = field(default_factory=dict)

    async def deliver(self, reply: Reply) -> None:
        for message in reply.messages:
            self.received.setdefault(int(message.to.chat_id[1:]), []).append(message.text)

    def take(self) -> dict[int, list[str]]:
        """Everything received since the last take."""
        got, self.received = self.received, {}
        return got


@pytest.fixture
async def inboxes(desk: Desk) -> Inboxes:
    w = desk.world
    async with transaction(desk.db.factory) as session:
        for person in (w.reporter, w.engineer, w.backup_engineer, w.supervisor, w.manager, w.other_reporter):
            await link_identity(session, person, Channel.WEBCHAT, f"p{person}")
    return Inboxes()
