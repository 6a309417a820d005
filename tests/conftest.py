"""Shared fixtures: one database per test on every engine available, a manual clock, and a
small seeded site ("world") with one person of each role.

The storage suite is one suite run on two engines: SQLite always, PostgreSQL whenever
DUTYDESK_TEST_POSTGRES_URL is set (CI sets it; there it must not be skipped).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.clock import ManualClock
from handlers.sla.policy import PolicyBook, load_policy
from handlers.tickets.service import TicketService
from storage.engine import SessionFactory, create_engine, create_session_factory, transaction
from storage.enums import Role
from storage.migrate import upgrade
from storage.models import Person, Site, Subsystem, Ticket
from storage.repositories.people import add_membership
from storage.repositories.sites import create_site, subsystems
from storage.repositories.tickets import get_ticket

T = TypeVar("T")

POSTGRES_URL = os.environ.get("DUTYDESK_TEST_POSTGRES_URL")
#: Set by .ci/run: there a missing PostgreSQL is a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("DUTYDESK_TEST_REQUIRE_POSTGRES") == "1"
ENGINES = ["sqlite", "postgresql"]

#: 2026-12-01 09:00 in Asia/Shanghai.
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@dataclass
class Database:
    """A fresh, migrated database for one test."""

    name: str
    url: str
    engine: AsyncEngine
    factory: SessionFactory
    schema: str | None = None

    def new_engine(self) -> AsyncEngine:
        """Another engine on the same database (a second process would have its own)."""
        return make_engine(self.url, self.schema)


def make_engine(url: str, schema: str | None) -> AsyncEngine:
    """An engine whose connections live in ``schema`` (PostgreSQL) when one is given."""
    if schema is None:
        return create_engine(url)
    return create_engine(url, connect_args={"server_settings": {"search_path": schema}})


async def open_database(name: str, tmp_path: Path, *, migrate: bool = True) -> AsyncIterator[Database]:
    """Create an empty database on engine ``name``; drop it afterwards."""
    if name == "sqlite":
        url, schema = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}", None
    else:
        if not POSTGRES_URL:
            if REQUIRE_POSTGRES:
                pytest.fail("DUTYDESK_TEST_REQUIRE_POSTGRES=1 but DUTYDESK_TEST_POSTGRES_URL is not set")
            pytest.skip("PostgreSQL: set DUTYDESK_TEST_POSTGRES_URL to run this half of the suite")
        url, schema = POSTGRES_URL, f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
    engine = make_engine(url, schema)
    if migrate:
        await upgrade(engine)
    try:
        yield Database(name, url, engine, create_session_factory(engine), schema)
    finally:
        await engine.dispose()
        if schema is not None:
            admin = create_engine(url)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


@pytest.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database, once per engine."""
    async for database in open_database(request.param, tmp_path):
        yield database


@pytest.fixture(params=ENGINES)
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty (unmigrated) database, once per engine."""
    async for database in open_database(request.param, tmp_path, migrate=False):
        yield database


@pytest.fixture
def clock() -> ManualClock:
    """A clock standing at START until a test moves it."""
    return ManualClock(START)


@pytest.fixture
def policies() -> PolicyBook:
    """The default policy (the seed's table)."""
    return PolicyBook(load_policy())


@dataclass
class World:
    """A seeded site: ids of one person per role, plus outsiders."""

    site: Site
    other_site: Site
    subsystems: list[Subsystem]
    reporter: int
    other_reporter: int
    engineer: int
    backup_engineer: int
    supervisor: int
    manager: int
    outsider: int  # a supervisor, but of the other site
    stranger: int  # registered nowhere


@pytest.fixture
async def world(db: Database, clock: ManualClock) -> World:
    """The demo site with one person of each role (see World)."""
    async with transaction(db.factory) as session:
        site = await create_site(session, "示例法院", "demo", clock.now())
        other = await create_site(session, "另一法院", "other", clock.now())
        assert site.id is not None and other.id is not None
        ids: dict[str, int] = {}
        plan = [
            ("reporter", site.id, Role.REPORTER),
            ("other_reporter", site.id, Role.REPORTER),
            ("engineer", site.id, Role.ENGINEER),
            ("backup_engineer", site.id, Role.ENGINEER),
            ("supervisor", site.id, Role.SUPERVISOR),
            ("manager", site.id, Role.MANAGER),
            ("outsider", other.id, Role.SUPERVISOR),
            ("stranger", None, None),
        ]
        for key, site_id, role in plan:
            person = Person(name=key, created_at=clock.now())
            session.add(person)
            await session.flush()
            assert person.id is not None
            ids[key] = person.id
            if site_id is not None and role is not None:
                await add_membership(session, person.id, site_id, role)
        subs = list(await subsystems(session, site.id))
    return World(site=site, other_site=other, subsystems=subs, **ids)


class Desk:
    """Runs ticket operations as the bot would: one transaction per operation."""

    def __init__(self, db: Database, clock: ManualClock, policies: PolicyBook, world: World) -> None:
        self.db, self.clock, self.policies, self.world = db, clock, policies, world

    async def run(self, operation: Callable[[TicketService], Awaitable[T]]) -> T:
        """Run ``operation`` on a TicketService inside one committed transaction."""
        async with transaction(self.db.factory) as session:
            return await operation(TicketService(session, self.policies, self.clock))

    async def report(
        self, *, level: int | None = 1, reporter: int | None = None, description: str = "全院断网"
    ) -> int:
        """A new ticket; classified and confirmed at ``level`` unless level is None."""
        who = reporter or self.world.reporter
        subsystem = self.world.subsystems[3].id
        assert subsystem is not None

        async def create(service: TicketService) -> int:
            ticket = await service.report(
                site_id=self.world.site.id or 0,
                reporter_id=who,
                subsystem_id=subsystem,
                description=description,
            )
            assert ticket.id is not None
            if level is not None:
                await service.classify(ticket.id, who, level, confirmed=True)
            return ticket.id

        return await self.run(create)

    async def ticket(self, ticket_id: int) -> Ticket:
        """The stored ticket, read afresh."""
        async with transaction(self.db.factory) as session:
            ticket = await get_ticket(session, ticket_id)
            assert ticket is not None
            return ticket


@pytest.fixture
def desk(db: Database, clock: ManualClock, policies: PolicyBook, world: World) -> Desk:
    """Ticket operations on the seeded world."""
    return Desk(db, clock, policies, world)
