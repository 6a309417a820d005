"""Migrations from an empty database to head (and back) on every engine."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (the tables)
from storage import roster_models  # noqa: F401  (the duty roster table)
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from tests.conftest import Database

TABLES = {
    "site",
    "subsystem",
    "asset",
    "person",
    "membership",
    "chat_identity",
    "ticket",
    "ticket_event",
    "deadline",
    "conversation",
    "attachment",
    "inbox_update",
    "invite",
    "fault_report",
    "webchat_message",
    "timer",
    "outbox_message",
    "ticket_card",
    "cron_run",
    "duty_shift",
    "alembic_version",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))


async def test_empty_database_upgrades_to_head(empty_db: Database) -> None:
    assert await current_revision(empty_db.engine) is None
    await upgrade(empty_db.engine)
    assert await current_revision(empty_db.engine) == head_revision()
    async with empty_db.engine.connect() as connection:
        assert await connection.run_sync(_tables) == TABLES


async def test_migrations_match_the_models(db: Database) -> None:
    """Autogenerate finds nothing to add: the migrations create exactly the tables the code uses."""
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_upgrade_is_idempotent_and_downgrade_empties(db: Database) -> None:
    await upgrade(db.engine)
    assert await current_revision(db.engine) == head_revision()
    await downgrade(db.engine, "base")
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_tables) == {"alembic_version"}
    await upgrade(db.engine)
    assert await current_revision(db.engine) == head_revision()
