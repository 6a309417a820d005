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
from storage.errors import is_transient
from storage.repositories import inbox


@dataclass
class _Pending:
    channel: Channel
    key: str
    payload: dict[str, Any]
    at: datetime
    retry_at: datetime | None
    stored: asyncio.Future[bool]


class InboxWriter:
    """Group commit for ``inbox.store``: same answer, fewer transactions."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self._queue: list[_Pending] = []
        self._writing: asyncio.Task[None] | None = None

    async def store(
        self,
        channel: Channel,
        key: str,
        payload: dict[str, Any],
        at: datetime,
        retry_at: datetime | None = None,
    ) -> bool:
        """Keep an update unless its key was seen before; True when it is new (committed)."""
        pending = _Pending(channel, key, payload, at, retry_at, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write())
        return await pending.stored

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._commit(batch)
            except Exception as error:
                if len(batch) == 1 or is_transient(error):  # every caller of the batch answers with an error
                    _fail(batch, error)
                    continue
                for pending in batch:  # one bad update must not cost the others theirs
                    try:
                        await self._commit([pending])
                    except Exception as alone:
                        _fail([pending], alone)

    async def _commit(self, batch: list[_Pending]) -> None:
        async with transaction(self.sessions) as session:
            fresh = [await inbox.store(session, p.channel, p.key, p.payload, p.at, p.retry_at) for p in batch]
        for pending, new in zip(batch, fresh, strict=True):
            if not pending.stored.done():  # a caller may have gone (cancelled)
                pending.stored.set_result(new)


def _fail(batch: list[_Pending], error: BaseException) -> None:
    for pending in batch:
        if not pending.stored.done():
            pending.stored.set_exception(error)
