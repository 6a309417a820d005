"""Engines and sessions, built at start-up from a URL (never at import time).

SQLite is the embedded default: WAL, a busy timeout, foreign keys on, and every transaction
opened with ``BEGIN IMMEDIATE`` so that read-modify-write cycles from concurrent writers
serialise instead of losing updates. PostgreSQL runs through asyncpg.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 30_000

SessionFactory = async_sessionmaker[AsyncSession]


def normalise_url(url: str) -> URL:
    """Map plain ``sqlite://`` / ``postgresql://`` URLs to their async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    return normalise_url(url).render_as_string(hide_password=True)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Build the async engine for ``url`` with the per-dialect settings above."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(parsed, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so "begin" below is the only BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


#: One writer at a time per SQLite engine within a process. SQLite allows one writer anyway;
#: queueing here is FIFO, whereas its busy handler retries with sleeps of up to 100 ms, which
#: under load turns into seconds of latency. Other processes still meet busy_timeout.
_sqlite_writers: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _writer_lock(factory: SessionFactory) -> asyncio.Lock | None:
    engine = factory.kw.get("bind")
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return None
    lock = _sqlite_writers.get(engine)
    if lock is None:
        lock = _sqlite_writers[engine] = asyncio.Lock()
    return lock


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any exception."""
    lock = _writer_lock(factory)
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        session = await stack.enter_async_context(factory())
        await stack.enter_async_context(session.begin())
        yield session
