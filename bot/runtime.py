"""What a running dutydesk process holds: settings, policy, engine, sessions and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from handlers.clock import Clock, SystemClock
from handlers.sla.policy import PolicyBook, load_policy
from storage.engine import SessionFactory, create_engine, create_session_factory


@dataclass
class Runtime:
    """The pieces built at start-up and handed to whatever needs them."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    policies: PolicyBook
    clock: Clock


@asynccontextmanager
async def open_runtime(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """Load the policy (refusing a malformed one), build the engine; dispose it at the end."""
    policies = PolicyBook(load_policy(settings.policy))
    engine = create_engine(settings.database_url)
    try:
        yield Runtime(settings, engine, create_session_factory(engine), policies, clock or SystemClock())
    finally:
        await engine.dispose()
