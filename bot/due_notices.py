"""Due times shared between processes on one PostgreSQL, with LISTEN / NOTIFY.

Each process wakes at the earliest due row it knows of; a row another process wrote (a timer,
an update waiting for a retry, a lease that runs out when its holder dies) reaches it as a
notification on the channel ``dutydesk_due`` carrying the due time. Nothing polls. SQLite is one
process: there this does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("dutydesk.due_notices")
CHANNEL = "dutydesk_due"


class DueNotices:
    """Tells the other processes of the due times this one learns, and hears theirs."""

    def __init__(
        self, engine: AsyncEngine, heard: Callable[[datetime], None], now: Callable[[], datetime]
    ) -> None:
        self.engine, self.heard, self.now = engine, heard, now
        self._connection: AsyncConnection | None = None
        self._pg: Any = None  # the asyncpg connection that listens and notifies
        self._told: datetime | None = None  # the earliest time told that has not passed yet
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (PostgreSQL only)."""
        if self.engine.dialect.name != "postgresql":
            return
        self._connection = await self.engine.connect()
        raw = await self._connection.get_raw_connection()
        self._pg = raw.driver_connection
        await self._pg.add_listener(CHANNEL, self._on_notice)

    async def stop(self) -> None:
        """Stop listening."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._pg is not None:
            await self._pg.remove_listener(CHANNEL, self._on_notice)
            self._pg = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def tell(self, at: datetime) -> None:
        """Let the other processes know something falls due at ``at`` (unless a time no later
        was told already and has not passed)."""
        if self._pg is None:
            return
        if self._told is not None and self._told > self.now() and self._told <= at:
            return
        self._told = at
        task = asyncio.create_task(self._notify(at))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _notify(self, at: datetime) -> None:
        try:
            await self._pg.execute("SELECT pg_notify($1, $2)", CHANNEL, at.isoformat())
        except Exception as error:  # the others still wake for their own rows and at start
            log.warning("could not tell the other processes of a due time: %s", error)
            self._told = None

    def _on_notice(self, _connection: Any, pid: int, _channel: str, payload: str) -> None:
        if self._pg is not None and pid == self._pg.get_server_pid():
            return  # our own
        try:
            at = datetime.fromisoformat(payload)
        except ValueError:
            return
        self.heard(at)
