"""Storing inbound updates before they are acknowledged, many per transaction.

A webhook must answer fast, and it may only answer once the update is stored. One transaction
per update makes a burst queue on the database (SQLite's one writer, PostgreSQL's pool); here
every update that arrives while a batch is being written goes into the next batch, written in
one transaction, so a burst of 200 costs a few commits instead of 200.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.engine import SessionFactory, transaction
from storage.enums import Channel
from storage.repositories import inbox


@dataclass
class _Pending:
    channel: Channel
    key: str
    payload: dict[str, Any]
    at: datetime
    stored: asyncio.Future[bool]


class InboxWriter:
    """Group commit for ``inbox.store``: same answer, fewer transactions."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._queue: list[_Pending] = []
        self._writing: asyncio.Task[None] | None = None

    async def store(self, channel: Channel, key: str, payload: dict[str, Any], at: datetime) -> bool:
        """Keep an update unless its key was seen before; True when it is new (committed)."""
        pending = _Pending(channel, key, payload, at, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write())
        return await pending.stored

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with transaction(self.sessions) as session:
                    fresh = [await inbox.store(session, p.channel, p.key, p.payload, p.at) for p in batch]
            except Exception as error:  # every caller of the batch answers with an error
                for pending in batch:
                    if not pending.stored.done():  # a caller may have gone (cancelled)
                        pending.stored.set_exception(error)
                continue
            for pending, new in zip(batch, fresh, strict=True):
                if not pending.stored.done():
                    pending.stored.set_result(new)
